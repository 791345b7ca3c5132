// Where the virtio console's output goes: a host fd the VMM lends (stdout),
// written to the end on the calling thread. After the first write error the
// output is dropped (said once in the log, and counted): the guest carries on.
#pragma once

#include <cstdint>
#include <span>

namespace vmm {

class ConsoleOutput {
  public:
    // `fd` is borrowed and must outlive this object.
    explicit ConsoleOutput(int fd) : fd_(fd) {}

    // Writes all of `bytes`, waiting while a non-blocking fd is full.
    void write(std::span<const uint8_t> bytes);
    bool failed() const { return failed_; }
    // Bytes given to write() that never reached the fd.
    uint64_t dropped() const { return dropped_; }

  private:
    int fd_;
    bool failed_ = false;
    uint64_t dropped_ = 0;
};

}  // namespace vmm
