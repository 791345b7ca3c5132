#include "devices/virtio/console/console_input_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace vmm {

ConsoleInputBuffer::ConsoleInputBuffer(size_t capacity) : ring_(capacity) {
    if (capacity == 0) {
        throw Error("console input buffer: capacity must not be 0");
    }
}

size_t ConsoleInputBuffer::input_room() const {
    std::lock_guard lock(mutex_);
    return ring_.size() - size_;
}

size_t ConsoleInputBuffer::pending() const {
    std::lock_guard lock(mutex_);
    return size_;
}

size_t ConsoleInputBuffer::enqueue_input(std::span<const uint8_t> bytes) {
    size_t accepted = 0;
    {
        std::lock_guard lock(mutex_);
        accepted = std::min(bytes.size(), ring_.size() - size_);
        if (accepted == 0) {
            return 0;  // nothing to copy (an empty span's data() may be null)
        }
        // At most two pieces: up to the end of the ring, then from its start.
        size_t tail = (head_ + size_) % ring_.size();
        size_t first = std::min(accepted, ring_.size() - tail);
        std::memcpy(ring_.data() + tail, bytes.data(), first);
        std::memcpy(ring_.data(), bytes.data() + first, accepted - first);
        size_ += accepted;
    }
    event_.signal();
    return accepted;
}

size_t ConsoleInputBuffer::take(std::span<uint8_t> out) {
    std::lock_guard lock(mutex_);
    size_t count = std::min(out.size(), size_);
    if (count == 0) {
        return 0;
    }
    size_t first = std::min(count, ring_.size() - head_);
    std::memcpy(out.data(), ring_.data() + head_, first);
    std::memcpy(out.data() + first, ring_.data(), count - first);
    head_ = (head_ + count) % ring_.size();
    size_ -= count;
    return count;
}

std::vector<uint8_t> ConsoleInputBuffer::peek() const {
    std::lock_guard lock(mutex_);
    std::vector<uint8_t> bytes(size_);
    if (size_ == 0) {
        return bytes;  // nothing to copy (an empty vector's data() may be null)
    }
    size_t first = std::min(size_, ring_.size() - head_);
    std::memcpy(bytes.data(), ring_.data() + head_, first);
    std::memcpy(bytes.data() + first, ring_.data(), size_ - first);
    return bytes;
}

}  // namespace vmm
