// A 16550A-compatible UART (the PC's COM1): what Linux's 8250 driver and early
// console need. Output goes to a sink as it is written (the transmitter is
// always empty): the sink must not wait (a vCPU thread calls it), and says
// how much it took; the rest is counted as dropped. Input is queued by the
// I/O thread and raised as interrupts.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include "devices/bus_device.hpp"
#include "devices/console_sink.hpp"
#include "vmm/base/state_stream.hpp"

namespace vmm {

class Serial8250 : public BusDevice, public ConsoleSink {
  public:
    using Sink = OutputSink;
    using Interrupt = std::function<void()>;

    static constexpr size_t kInputCapacity = 64 * 1024;

    Serial8250(Interrupt interrupt, Sink sink);

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Queues host input for the guest; returns how many bytes fit.
    size_t enqueue_input(std::span<const uint8_t> bytes) override;
    // Room left in the input queue (the I/O thread stops reading when zero).
    size_t input_room() const override;

    // Bytes the guest transmitted, and of those the ones the sink did not
    // take (any thread).
    uint64_t tx_bytes() const { return tx_bytes_.load(std::memory_order_relaxed); }
    uint64_t tx_dropped() const { return tx_dropped_.load(std::memory_order_relaxed); }

    // Snapshots: the registers, the pending THRE interrupt and the input
    // not yet read. restore_state() throws StateError for a corrupt state
    // (more input than the queue holds) and leaves the device as it was;
    // otherwise it pulses the interrupt if the restored registers have one
    // pending, as the line was high when the snapshot was taken.
    void save_state(StateWriter& out) const;
    void restore_state(StateReader& in);

    // Called with whether a write to THR now does nothing but transmit (no
    // THRE interrupt enabled, no loopback): then the VMM may have KVM queue
    // those writes (coalesced port I/O) and hand them over later, in order,
    // instead of exiting on each byte. Called at once if the state is
    // plain, then on each change, never under the device's lock; any thread.
    using PlainTransmitListener = std::function<void(bool plain)>;
    void set_plain_transmit_listener(PlainTransmitListener listener);

  private:
    // Returns whether the interrupt line should be pulsed.
    bool update_interrupt_locked();
    uint8_t read_register(uint64_t offset);
    // Returns whether the write transmitted a byte, stored in *transmitted.
    bool write_register(uint64_t offset, uint8_t value, uint8_t* transmitted);

    bool plain_transmit_locked() const;
    // Tells the listener when plain_transmit_locked() changed.
    void update_plain_transmit();

    mutable std::mutex mutex_;
    // Held while the listener runs, so that its calls follow the state's order.
    std::mutex listener_mutex_;
    PlainTransmitListener plain_listener_;
    bool plain_told_ = false;
    Interrupt interrupt_;
    Sink sink_;
    std::deque<uint8_t> input_;
    uint8_t ier_ = 0;
    uint8_t lcr_ = 0x03;  // 8 data bits, 1 stop, no parity
    uint8_t mcr_ = 0x08;  // OUT2: interrupts routed to the PIC
    uint8_t scr_ = 0;
    uint8_t fcr_ = 0;
    uint8_t divisor_low_ = 0x0c;  // 9600 baud
    uint8_t divisor_high_ = 0;
    bool thr_empty_pending_ = false;  // THRE interrupt waiting to be seen
    bool line_raised_ = false;        // an interrupt condition already signalled
    std::atomic<uint64_t> tx_bytes_{0};
    std::atomic<uint64_t> tx_dropped_{0};
};

}  // namespace vmm
