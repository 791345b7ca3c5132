#include "devices/virtio/console/console_device.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>

#include "devices/virtio/virtio_spec.hpp"

namespace vmm {

namespace {

constexpr uint64_t kEmergWrOffset = offsetof(ConsoleDevice::Config, emerg_wr);

}  // namespace

ConsoleDevice::ConsoleDevice(OutputSink output, uint16_t cols, uint16_t rows)
    : input_(std::make_shared<ConsoleInputBuffer>()),
      output_(std::move(output)),
      cols_(cols),
      rows_(rows) {}

void ConsoleDevice::send(std::span<const uint8_t> bytes) {
    tx_dropped_ += bytes.size() - output_(bytes);
}

uint64_t ConsoleDevice::offered_features() const {
    return (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_INDIRECT_DESC) |
           (1ull << VIRTIO_F_RING_EVENT_IDX) | (1ull << kFeatureSize) |
           (1ull << kFeatureEmergWrite);
}

void ConsoleDevice::read_config(uint64_t offset, std::span<uint8_t> data) const {
    Config config{};
    {
        std::lock_guard lock(size_mutex_);
        config.cols = cols_;
        config.rows = rows_;
    }
    config.max_nr_ports = 1;  // meaningful only with MULTIPORT; one port all the same
    config.emerg_wr = 0;      // write-only
    copy_config(config, offset, data);
}

void ConsoleDevice::write_config(uint64_t offset, std::span<const uint8_t> data) {
    // emerg_wr works at any time, even before the driver negotiated anything
    // (early boot, or a ring it broke): its low byte is the character. The
    // other fields are the device's; writes to them are ignored.
    if (offset <= kEmergWrOffset && kEmergWrOffset - offset < data.size()) {
        send(data.subspan(kEmergWrOffset - offset, 1));
        ++tx_bytes_;
    }
}

void ConsoleDevice::activate(const GuestMemory& memory, uint64_t acked_features,
                             std::span<Queue> queues, VirtioInterrupt& interrupt) {
    if (queues.size() < 2) {
        throw Error(
            fmt::format("virtio-console: activated with {} queues, needs 2", queues.size()));
    }
    active_.emplace(memory, acked_features, queues, interrupt);
    {
        std::lock_guard lock(size_mutex_);
        config_interrupt_ = (acked_features & (1ull << kFeatureSize)) ? &interrupt : nullptr;
    }
    // Input that waited for the driver, into buffers it may have posted
    // before DRIVER_OK (their notifications found the device not live):
    // the I/O thread delivers it.
    input_->event().signal();
}

void ConsoleDevice::reset() {
    {
        std::lock_guard lock(size_mutex_);
        config_interrupt_ = nullptr;
    }
    active_.reset();  // and with it a transmit chain written in part
    // Pending input stays: it goes to the next driver.
}

void ConsoleDevice::set_size(uint16_t cols, uint16_t rows) {
    std::lock_guard lock(size_mutex_);
    if (cols == cols_ && rows == rows_) {
        return;
    }
    cols_ = cols;
    rows_ = rows;
    if (config_interrupt_ != nullptr) {
        config_interrupt_->signal_config_change();
    }
}

bool ConsoleDevice::process_queue(size_t index) {
    if (!live()) {
        return false;
    }
    try {
        if (index == kReceiveQueue) {
            return deliver_input();  // new buffers: pending input may fit now
        }
        if (index == kTransmitQueue) {
            return transmit();
        }
        return false;
    } catch (const Error&) {
        active_->broken = true;
        throw;
    }
}

bool ConsoleDevice::process_backend(size_t) {
    // Consumed before looking, so input enqueued from now on signals again.
    input_->event().consume();
    if (!live()) {
        return false;  // stays buffered; activate() signals again
    }
    try {
        return deliver_input();
    } catch (const Error&) {
        active_->broken = true;
        throw;
    }
}

bool ConsoleDevice::deliver_input() {
    const GuestMemory& memory = active_->memory;
    Queue& rx = active_->queues[kReceiveQueue];
    bool more = false;
    unsigned chains = 0;
    // The only consumer of input_ runs here (transport lock held), so input
    // seen pending is still there when the chain is filled.
    while (input_->pending() > 0) {
        if (chains == kMaxChainsPerCall) {
            more = true;
            break;
        }
        auto chain = rx.pop(memory);
        if (!chain) {
            break;  // no buffers: process_queue(0) resumes when the driver adds some
        }
        ++chains;
        // Each buffer goes back as soon as it holds what is pending; a chain
        // without writable bytes (a driver bug) goes back empty.
        ChainWriter writer(memory, *chain);
        std::array<uint8_t, 4096> chunk;
        while (writer.remaining() > 0) {
            size_t want = static_cast<size_t>(std::min<uint64_t>(writer.remaining(), chunk.size()));
            size_t got = input_->take(std::span(chunk).first(want));
            if (got == 0) {
                break;
            }
            writer.write(std::span(chunk).first(got));
        }
        rx.add_used(memory, chain->head(), static_cast<uint32_t>(writer.bytes_written()));
        rx_bytes_ += writer.bytes_written();
    }
    active_->notify_if_needed(rx);
    return more;
}

bool ConsoleDevice::transmit() {
    const GuestMemory& memory = active_->memory;
    Queue& tx = active_->queues[kTransmitQueue];
    std::optional<PendingOutput>& pending = active_->pending_output;
    uint64_t budget = kMaxOutputBytesPerCall;
    unsigned chains = 0;
    bool more = false;
    while (true) {
        if (budget == 0) {
            more = true;
            break;
        }
        if (!pending) {
            if (chains == kMaxChainsPerCall) {
                more = true;
                break;
            }
            auto chain = tx.pop(memory);
            if (!chain) {
                break;
            }
            ++chains;
            pending.emplace(PendingOutput{chain->head(), ChainReader(memory, *chain)});
        }
        // Output the sink drops still counts against the budget.
        ChainReader& reader = pending->reader;
        uint64_t count = std::min(budget, reader.remaining());
        budget -= count;
        tx_bytes_ += count;
        for (const GuestSlice& slice : reader.slices(count)) {
            // SAFETY: a checked slice of guest RAM; the guest changing it
            // meanwhile garbles only its own output.
            send(std::span<const uint8_t>(slice.data(), slice.size()));
        }
        if (reader.remaining() > 0) {
            more = true;  // the rest of this chain on the next call
            break;
        }
        // transmitq buffers are device-readable: the device wrote nothing.
        tx.add_used(memory, pending->head, 0);
        pending.reset();
    }
    active_->notify_if_needed(tx);
    return more;
}

VirtioDevice::Metrics ConsoleDevice::metrics() const {
    return {{"rx_bytes", rx_bytes_}, {"tx_bytes", tx_bytes_}, {"tx_dropped", tx_dropped_}};
}

void ConsoleDevice::prepare_save() {
    if (!live() || !active_->pending_output) {
        return;
    }
    // The chain must not outlive the snapshot half sent: its rest goes out
    // now, whatever its size (below 4 GiB; the sink drops what it cannot take).
    const GuestMemory& memory = active_->memory;
    Queue& tx = active_->queues[kTransmitQueue];
    PendingOutput& pending = *active_->pending_output;
    uint64_t count = pending.reader.remaining();
    tx_bytes_ += count;
    for (const GuestSlice& slice : pending.reader.slices(count)) {
        // SAFETY: a checked slice of guest RAM.
        send(std::span<const uint8_t>(slice.data(), slice.size()));
    }
    tx.add_used(memory, pending.head, 0);
    active_->pending_output.reset();
    active_->notify_if_needed(tx);
}

void ConsoleDevice::save_state(StateWriter& out) const {
    {
        std::lock_guard lock(size_mutex_);
        out.u16(cols_);
        out.u16(rows_);
    }
    out.bytes(input_->peek());
}

void ConsoleDevice::restore_state(StateReader& in) {
    uint16_t cols = in.u16();
    uint16_t rows = in.u16();
    std::vector<uint8_t> input = in.bytes(input_->capacity());
    if (input.size() > input_->input_room()) {
        in.fail(fmt::format("{} bytes of pending input, room for {}", input.size(),
                            input_->input_room()));
    }
    {
        // What the driver last read; the host terminal's size, if it differs,
        // comes through set_size() as a change.
        std::lock_guard lock(size_mutex_);
        cols_ = cols;
        rows_ = rows;
    }
    // Signals the input event: delivered once the driver has buffers.
    input_->enqueue_input(input);
}

}  // namespace vmm
