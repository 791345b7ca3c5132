#include "devices/virtio/reader_writer.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace vmm {

namespace {

std::vector<DescriptorBuffer> buffers_of(const DescriptorChain& chain, bool writable) {
    std::vector<DescriptorBuffer> selected;
    for (const auto& buffer : chain.buffers()) {
        if (buffer.writable == writable) {
            selected.push_back(buffer);
        }
    }
    return selected;
}

}  // namespace

namespace detail {

BufferCursor::BufferCursor(const GuestMemory& memory, std::vector<DescriptorBuffer> buffers)
    : memory_(&memory), buffers_(std::move(buffers)) {
    for (const auto& buffer : buffers_) {
        remaining_ += buffer.length;
    }
}

BufferCursor::Piece BufferCursor::take(uint64_t max_bytes) {
    if (max_bytes == 0 || index_ == buffers_.size()) {
        return {GuestAddress(), 0};
    }
    const DescriptorBuffer& buffer = buffers_[index_];
    uint64_t length = std::min<uint64_t>(max_bytes, buffer.length - offset_);
    // The chain checked the whole buffer against guest RAM, so this is inside it.
    Piece piece{buffer.address + offset_, length};
    offset_ += length;
    if (offset_ == buffer.length) {
        ++index_;
        offset_ = 0;
    }
    remaining_ -= length;
    consumed_ += length;
    return piece;
}

std::vector<GuestSlice> BufferCursor::slices(uint64_t max_bytes) {
    std::vector<GuestSlice> result;
    while (max_bytes > 0) {
        Piece piece = take(max_bytes);
        if (piece.length == 0) {
            break;
        }
        // SAFETY: slice() checks the piece again; the caller may only touch
        // these bytes, and must expect the guest to change them concurrently.
        result.push_back(memory_->slice(piece.address, piece.length));
        max_bytes -= piece.length;
    }
    return result;
}

BufferCursor BufferCursor::split_at(uint64_t offset) {
    std::vector<DescriptorBuffer> tail;
    if (offset >= remaining_) {
        return BufferCursor(*memory_, std::move(tail));
    }
    // The buffer that holds byte `offset` from the cursor, and where in it.
    // offset < remaining_ guarantees one does.
    size_t index = index_;
    uint64_t at = offset_ + offset;
    while (at >= buffers_[index].length) {
        at -= buffers_[index].length;
        ++index;
    }
    if (at > 0) {
        // That buffer is cut in two.
        DescriptorBuffer& cut = buffers_[index];
        tail.push_back({cut.address + at, static_cast<uint32_t>(cut.length - at), cut.writable});
        cut.length = static_cast<uint32_t>(at);
        ++index;
    }
    tail.insert(tail.end(), buffers_.begin() + static_cast<ptrdiff_t>(index), buffers_.end());
    buffers_.erase(buffers_.begin() + static_cast<ptrdiff_t>(index), buffers_.end());
    remaining_ = offset;
    // A cut at the cursor leaves the current buffer used up: step past it.
    if (index_ < buffers_.size() && offset_ == buffers_[index_].length) {
        ++index_;
        offset_ = 0;
    }
    return BufferCursor(*memory_, std::move(tail));
}

void throw_short_chain(uint16_t head, const char* kind, uint64_t needed, uint64_t remaining) {
    throw QueueError(
        fmt::format("virtqueue descriptor chain at head {}: needs {} {} bytes but only {} are left",
                    head, needed, kind, remaining));
}

}  // namespace detail

ChainReader::ChainReader(const GuestMemory& memory, const DescriptorChain& chain)
    : head_(chain.head()), cursor_(memory, buffers_of(chain, false)) {}

size_t ChainReader::read(std::span<uint8_t> out) {
    size_t done = 0;
    while (done < out.size()) {
        auto piece = cursor_.take(out.size() - done);
        if (piece.length == 0) {
            break;
        }
        // SAFETY: read() bounds-checks the piece and copies it out of guest RAM.
        cursor_.memory().read(piece.address, out.subspan(done, piece.length));
        done += piece.length;
    }
    return done;
}

void ChainReader::skip(uint64_t count) {
    if (count > remaining()) {
        detail::throw_short_chain(head_, "readable", count, remaining());
    }
    while (count > 0) {
        count -= cursor_.take(count).length;
    }
}

std::vector<GuestSlice> ChainReader::slices(uint64_t max_bytes) {
    return cursor_.slices(max_bytes);
}

ChainReader ChainReader::split_at(uint64_t offset) {
    return ChainReader(head_, cursor_.split_at(offset));
}

ChainWriter::ChainWriter(const GuestMemory& memory, const DescriptorChain& chain)
    : head_(chain.head()), cursor_(memory, buffers_of(chain, true)) {}

size_t ChainWriter::write(std::span<const uint8_t> in) {
    size_t done = 0;
    while (done < in.size()) {
        auto piece = cursor_.take(in.size() - done);
        if (piece.length == 0) {
            break;
        }
        // SAFETY: write() bounds-checks the piece, a device-writable buffer.
        cursor_.memory().write(piece.address, in.subspan(done, piece.length));
        done += piece.length;
    }
    return done;
}

std::vector<GuestSlice> ChainWriter::slices(uint64_t max_bytes) {
    return cursor_.slices(max_bytes);
}

ChainWriter ChainWriter::split_at(uint64_t offset) {
    return ChainWriter(head_, cursor_.split_at(offset));
}

}  // namespace vmm
