// Where the host's console input goes: the serial port or a virtio console.
// The I/O thread's stdin reader (vmm/core/console_input.*) asks for room first
// and stops reading while there is none, so no input is dropped.
// And where the guest's console output goes: an OutputSink.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

namespace vmm {

// Takes the guest's console output and returns how many of the bytes it
// took; the device counts the rest as dropped. It must never wait (a vCPU
// thread or the I/O thread calls it): the VMM's queues them for a writer
// thread (vmm/base/async_writer.hpp).
using OutputSink = std::function<size_t(std::span<const uint8_t>)>;

class ConsoleSink {
  public:
    virtual ~ConsoleSink() = default;

    // Bytes enqueue_input() would take now.
    virtual size_t input_room() const = 0;
    // Queues host input for the guest; returns how many bytes it took (never
    // more than input_room()).
    virtual size_t enqueue_input(std::span<const uint8_t> bytes) = 0;
};

}  // namespace vmm
