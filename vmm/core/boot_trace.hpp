// Timestamps of the boot milestones, relative to VMM start (entry to main),
// printed by --boot-trace. Each milestone is recorded once, from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace vmm {

class BootTrace {
  public:
    // ApiReady and InstanceStart are reported only when they happened (the
    // API's socket listening; the VM being built, whatever asked for it).
    enum class Event {
        FirstKvmRun,
        FirstSerialByte,
        BootTimer,
        Exit,
        ApiReady,
        InstanceStart,
        Count
    };

    BootTrace();
    // Records `event` unless it has been recorded already.
    void mark(Event event);
    // Nanoseconds since start, or -1 if never recorded.
    int64_t elapsed_ns(Event event) const;
    std::string report() const;
    int64_t since_start_ns() const { return now_ns() - start_ns_; }

    static int64_t now_ns();

  private:
    int64_t start_ns_;
    std::array<std::atomic<int64_t>, static_cast<size_t>(Event::Count)> marks_;
};

}  // namespace vmm
