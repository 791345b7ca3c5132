// The virtio console's input side: a bounded byte queue between the host's
// stdin reader (I/O thread) and the device, which may be reset or activated
// meanwhile on a vCPU thread. Input stays here until the driver gives
// buffers for it, so nothing the queue took is lost; the eventfd tells the
// device that bytes arrived.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "devices/console_sink.hpp"
#include "vmm/base/event_fd.hpp"

namespace vmm {

class ConsoleInputBuffer : public ConsoleSink {
  public:
    static constexpr size_t kCapacity = 64 * 1024;

    explicit ConsoleInputBuffer(size_t capacity = kCapacity);

    // ConsoleSink, any thread.
    size_t input_room() const override;
    size_t enqueue_input(std::span<const uint8_t> bytes) override;

    // The device's side (one consumer).
    size_t pending() const;
    // Moves up to out.size() of the oldest bytes into `out`; returns how many.
    size_t take(std::span<uint8_t> out);
    // A copy of the pending bytes, oldest first, left in place (snapshots).
    std::vector<uint8_t> peek() const;
    size_t capacity() const { return ring_.size(); }
    // Signalled whenever enqueue_input() took bytes.
    const EventFd& event() const { return event_; }

  private:
    mutable std::mutex mutex_;
    std::vector<uint8_t> ring_;
    size_t head_ = 0;  // index of the oldest byte
    size_t size_ = 0;
    EventFd event_;
};

}  // namespace vmm
