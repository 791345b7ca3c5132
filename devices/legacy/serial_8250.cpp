#include "devices/legacy/serial_8250.hpp"

namespace vmm {

namespace {

// Register offsets (DLAB selects the divisor latch at 0 and 1).
constexpr uint64_t kData = 0;
constexpr uint64_t kInterruptEnable = 1;
constexpr uint64_t kInterruptId = 2;  // read: IIR, write: FCR
constexpr uint64_t kLineControl = 3;
constexpr uint64_t kModemControl = 4;
constexpr uint64_t kLineStatus = 5;
constexpr uint64_t kModemStatus = 6;
constexpr uint64_t kScratch = 7;

constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kIerReceived = 0x01;
constexpr uint8_t kIerTransmitEmpty = 0x02;
constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirTransmitEmpty = 0x02;
constexpr uint8_t kIirReceived = 0x04;
constexpr uint8_t kIirFifoEnabled = 0xc0;
constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearReceive = 0x02;
constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrTransmitEmpty = 0x20;
constexpr uint8_t kLsrIdle = 0x40;
constexpr uint8_t kMcrLoopback = 0x10;
// Modem status with a cable attached: carrier detect, data set ready, clear to send.
constexpr uint8_t kMsrConnected = 0xb0;

}  // namespace

Serial8250::Serial8250(Interrupt interrupt, Sink sink)
    : interrupt_(std::move(interrupt)), sink_(std::move(sink)) {}

void Serial8250::read(uint64_t offset, std::span<uint8_t> data) {
    bool pulse = false;
    {
        std::lock_guard lock(mutex_);
        for (size_t i = 0; i < data.size(); ++i) {
            data[i] = read_register(offset + i);
        }
        pulse = update_interrupt_locked();
    }
    if (pulse) {
        interrupt_();
    }
}

void Serial8250::write(uint64_t offset, std::span<const uint8_t> data) {
    // Only byte accesses are meaningful; wider ones write consecutive registers.
    for (size_t i = 0; i < data.size(); ++i) {
        uint8_t transmitted = 0;
        bool send = false;
        bool pulse = false;
        {
            std::lock_guard lock(mutex_);
            send = write_register(offset + i, data[i], &transmitted);
            pulse = update_interrupt_locked();
        }
        if (send) {
            size_t taken = sink_(std::span(&transmitted, 1));
            tx_bytes_.fetch_add(1, std::memory_order_relaxed);
            if (taken == 0) {
                tx_dropped_.fetch_add(1, std::memory_order_relaxed);
            }
        }
        if (pulse) {
            interrupt_();
        }
    }
    if (offset + data.size() > kInterruptEnable) {
        update_plain_transmit();  // IER or MCR may have changed
    }
}

bool Serial8250::plain_transmit_locked() const {
    return (ier_ & kIerTransmitEmpty) == 0 && (mcr_ & kMcrLoopback) == 0;
}

void Serial8250::set_plain_transmit_listener(PlainTransmitListener listener) {
    {
        std::lock_guard listening(listener_mutex_);
        plain_listener_ = std::move(listener);
        plain_told_ = false;  // as if told "not plain": the first call says "plain"
    }
    update_plain_transmit();
}

void Serial8250::update_plain_transmit() {
    std::lock_guard listening(listener_mutex_);
    if (!plain_listener_) {
        return;
    }
    bool plain = false;
    {
        std::lock_guard lock(mutex_);
        plain = plain_transmit_locked();
    }
    if (plain != plain_told_) {
        plain_listener_(plain);
        plain_told_ = plain;
    }
}

size_t Serial8250::enqueue_input(std::span<const uint8_t> bytes) {
    bool pulse = false;
    size_t accepted = 0;
    {
        std::lock_guard lock(mutex_);
        accepted = std::min(bytes.size(), kInputCapacity - input_.size());
        input_.insert(input_.end(), bytes.begin(), bytes.begin() + accepted);
        pulse = update_interrupt_locked();
    }
    if (pulse) {
        interrupt_();
    }
    return accepted;
}

size_t Serial8250::input_room() const {
    std::lock_guard lock(mutex_);
    return kInputCapacity - input_.size();
}

uint8_t Serial8250::read_register(uint64_t offset) {
    bool dlab = lcr_ & kLcrDlab;
    switch (offset) {
        case kData:
            if (dlab) {
                return divisor_low_;
            }
            if (input_.empty()) {
                return 0;
            }
            {
                uint8_t byte = input_.front();
                input_.pop_front();
                return byte;
            }
        case kInterruptEnable:
            return dlab ? divisor_high_ : ier_;
        case kInterruptId: {
            uint8_t fifo = (fcr_ & kFcrEnable) ? kIirFifoEnabled : 0;
            if ((ier_ & kIerReceived) && !input_.empty()) {
                return fifo | kIirReceived;
            }
            if ((ier_ & kIerTransmitEmpty) && thr_empty_pending_) {
                // Reading IIR acknowledges a THRE interrupt.
                thr_empty_pending_ = false;
                return fifo | kIirTransmitEmpty;
            }
            return fifo | kIirNone;
        }
        case kLineControl:
            return lcr_;
        case kModemControl:
            return mcr_;
        case kLineStatus:
            return kLsrTransmitEmpty | kLsrIdle | (input_.empty() ? 0 : kLsrDataReady);
        case kModemStatus:
            if (mcr_ & kMcrLoopback) {
                // Loopback wires DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
                return static_cast<uint8_t>(((mcr_ & 0x01) << 5) | ((mcr_ & 0x02) << 3) |
                                            ((mcr_ & 0x04) << 4) | ((mcr_ & 0x08) << 4));
            }
            return kMsrConnected;
        case kScratch:
            return scr_;
        default:
            return 0xff;
    }
}

bool Serial8250::write_register(uint64_t offset, uint8_t value, uint8_t* transmitted) {
    bool dlab = lcr_ & kLcrDlab;
    switch (offset) {
        case kData:
            if (dlab) {
                divisor_low_ = value;
                return false;
            }
            thr_empty_pending_ = true;  // sent at once, so the THR is empty again
            if (mcr_ & kMcrLoopback) {
                if (input_.size() < kInputCapacity) {
                    input_.push_back(value);
                }
                return false;
            }
            *transmitted = value;
            return true;
        case kInterruptEnable:
            if (dlab) {
                divisor_high_ = value;
                return false;
            }
            // Enabling THRE interrupts with an empty THR raises one at once,
            // which Linux's driver relies on to start transmitting.
            if ((value & kIerTransmitEmpty) && !(ier_ & kIerTransmitEmpty)) {
                thr_empty_pending_ = true;
            }
            ier_ = value & 0x0f;
            return false;
        case kInterruptId:
            fcr_ = value;
            if (value & kFcrClearReceive) {
                input_.clear();
            }
            return false;
        case kLineControl:
            lcr_ = value;
            return false;
        case kModemControl:
            mcr_ = value & 0x1f;
            return false;
        case kScratch:
            scr_ = value;
            return false;
        default:  // LSR and MSR are read-only
            return false;
    }
}

bool Serial8250::update_interrupt_locked() {
    bool pending = ((ier_ & kIerReceived) && !input_.empty()) ||
                   ((ier_ & kIerTransmitEmpty) && thr_empty_pending_);
    // OUT2 gates the UART's interrupt output onto the PC's IRQ 4 line, which
    // is edge-triggered: pulse once each time the gated line goes high.
    bool line = pending && (mcr_ & 0x08);
    bool pulse = line && !line_raised_;
    line_raised_ = line;
    return pulse;
}

void Serial8250::save_state(StateWriter& out) const {
    std::lock_guard lock(mutex_);
    out.u8(ier_);
    out.u8(lcr_);
    out.u8(mcr_);
    out.u8(scr_);
    out.u8(fcr_);
    out.u8(divisor_low_);
    out.u8(divisor_high_);
    out.boolean(thr_empty_pending_);
    out.bytes(std::vector<uint8_t>(input_.begin(), input_.end()));
}

void Serial8250::restore_state(StateReader& in) {
    uint8_t ier = in.u8();
    uint8_t lcr = in.u8();
    uint8_t mcr = in.u8();
    uint8_t scr = in.u8();
    uint8_t fcr = in.u8();
    uint8_t divisor_low = in.u8();
    uint8_t divisor_high = in.u8();
    bool thr_empty_pending = in.boolean();
    std::vector<uint8_t> input = in.bytes(kInputCapacity);
    // Bits the guest cannot set (write_register() masks them) mean corruption.
    if (ier & ~0x0f) {
        in.fail(fmt::format("interrupt enable register {:#x} has reserved bits", ier));
    }
    if (mcr & ~0x1f) {
        in.fail(fmt::format("modem control register {:#x} has reserved bits", mcr));
    }
    bool pulse = false;
    {
        std::lock_guard lock(mutex_);
        ier_ = ier;
        lcr_ = lcr;
        mcr_ = mcr;
        scr_ = scr;
        fcr_ = fcr;
        divisor_low_ = divisor_low;
        divisor_high_ = divisor_high;
        thr_empty_pending_ = thr_empty_pending;
        input_.assign(input.begin(), input.end());
        // The restored interrupt controller knows nothing of an edge it did
        // not take yet: a pending condition is signalled again (a spurious
        // one finds IIR "none", which the driver expects).
        line_raised_ = false;
        pulse = update_interrupt_locked();
    }
    if (pulse) {
        interrupt_();
    }
    update_plain_transmit();
}

}  // namespace vmm
