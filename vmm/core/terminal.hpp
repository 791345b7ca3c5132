// Puts stdin into raw mode while the guest owns the console (only when stdin
// is a terminal) and restores it on every way out: destructor, handled
// signals, and fatal signals (which restore, then re-raise).
#pragma once

#include <cstdint>
#include <utility>

namespace vmm {

// The terminal's size (columns, rows) for virtio-console; 80x25 when `fd` is
// no terminal.
std::pair<uint16_t, uint16_t> terminal_size(int fd);

class RawTerminal {
  public:
    explicit RawTerminal(int fd);
    ~RawTerminal();
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;

    bool active() const { return active_; }

  private:
    int fd_;
    bool active_ = false;
};

}  // namespace vmm
