#include "vmm/base/state_stream.hpp"

#include <limits>

namespace vmm {

void StateWriter::raw(const void* data, size_t size) {
    const auto* bytes = static_cast<const uint8_t*>(data);
    data_.insert(data_.end(), bytes, bytes + size);
}

void StateWriter::bytes(std::span<const uint8_t> data) {
    if (data.size() > std::numeric_limits<uint32_t>::max()) {
        throw Error(fmt::format("saved state: a part of {} bytes is too large", data.size()));
    }
    u32(uint32_t(data.size()));
    raw(data.data(), data.size());
}

void StateWriter::string(std::string_view text) {
    bytes(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::span<const uint8_t> StateReader::take(size_t size) {
    if (size > remaining()) {
        fail(fmt::format("truncated: {} bytes wanted at offset {}, {} left", size, offset_,
                         remaining()));
    }
    auto part = data_.subspan(offset_, size);
    offset_ += size;
    return part;
}

bool StateReader::boolean() {
    uint8_t value = u8();
    if (value > 1) {
        fail(fmt::format("a flag of value {} at offset {}", value, offset_ - 1));
    }
    return value == 1;
}

std::vector<uint8_t> StateReader::bytes(size_t max) {
    uint32_t size = u32();
    if (size > max) {
        fail(fmt::format("a part of {} bytes where at most {} are allowed", size, max));
    }
    auto part = take(size);
    return {part.begin(), part.end()};
}

std::string StateReader::string(size_t max) {
    std::vector<uint8_t> text = bytes(max);
    return {text.begin(), text.end()};
}

StateReader StateReader::section(std::string what) {
    uint32_t size = u32();
    return StateReader(take(size), std::move(what));
}

void StateReader::expect_end() const {
    if (remaining() != 0) {
        fail(fmt::format("{} bytes left over: not the format this VMM writes", remaining()));
    }
}

void StateReader::fail(const std::string& problem) const {
    throw StateError(fmt::format("{}: {}", what_, problem));
}

}  // namespace vmm
