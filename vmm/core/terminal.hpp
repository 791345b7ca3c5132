// Puts stdin into raw mode while the guest owns the console (only when stdin
// is a terminal) and restores it on every way out: destructor, handled
// signals, and fatal signals (which restore, then re-raise).
#pragma once

namespace vmm {

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
