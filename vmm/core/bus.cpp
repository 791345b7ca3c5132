#include "vmm/core/bus.hpp"

#include "vmm/base/error.hpp"

namespace vmm {

void Bus::insert(uint64_t base, uint64_t length, std::shared_ptr<BusDevice> device) {
    uint64_t last = 0;
    if (length == 0 || __builtin_add_overflow(base, length - 1, &last)) {
        throw Error(fmt::format("invalid bus range {:#x}+{:#x}", base, length));
    }
    // The first range starting after `base`, and the one before it.
    auto next = ranges_.upper_bound(base);
    if (next != ranges_.end() && next->first <= last) {
        throw Error(fmt::format("bus range {:#x}+{:#x} overlaps {:#x}", base, length, next->first));
    }
    if (next != ranges_.begin()) {
        auto previous = std::prev(next);
        if (previous->first + (previous->second.length - 1) >= base) {
            throw Error(
                fmt::format("bus range {:#x}+{:#x} overlaps {:#x}", base, length, previous->first));
        }
    }
    ranges_.emplace(base, Range{length, std::move(device)});
}

std::pair<BusDevice*, uint64_t> Bus::find(uint64_t address, uint64_t size) const {
    auto next = ranges_.upper_bound(address);
    if (next == ranges_.begin() || size == 0) {
        return {nullptr, 0};
    }
    const auto& [base, range] = *std::prev(next);
    uint64_t offset = address - base;
    // offset < length and size <= length - offset, written so nothing overflows.
    if (offset >= range.length || size > range.length - offset) {
        return {nullptr, 0};
    }
    return {range.device.get(), offset};
}

bool Bus::read(uint64_t address, std::span<uint8_t> data) const {
    auto [device, offset] = find(address, data.size());
    if (device == nullptr) {
        return false;
    }
    device->read(offset, data);
    return true;
}

bool Bus::write(uint64_t address, std::span<const uint8_t> data) const {
    auto [device, offset] = find(address, data.size());
    if (device == nullptr) {
        return false;
    }
    device->write(offset, data);
    return true;
}

}  // namespace vmm
