// virtio-console (VIRTIO 1.2, 5.3) with one port and no MULTIPORT: queue 0
// (receiveq) carries host input to the guest, queue 1 (transmitq) the
// guest's output to an OutputSink, which never waits: what it does not take
// is dropped and counted. Offers the console size (F_SIZE, resized from
// any thread) and the emergency write register (F_EMERG_WRITE).
//
// Threads: everything but input() and set_size() is called with the
// transport's lock held. Input arrives through ConsoleInputBuffer (any
// thread), whose eventfd is the device's backend 0.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "devices/console_sink.hpp"
#include "devices/virtio/console/console_input_buffer.hpp"
#include "devices/virtio/reader_writer.hpp"
#include "devices/virtio/virtio_device.hpp"

namespace vmm {

class ConsoleDevice : public VirtioDevice {
  public:
    static constexpr uint16_t kQueueSize = 256;
    static constexpr size_t kReceiveQueue = 0;
    static constexpr size_t kTransmitQueue = 1;
    static constexpr unsigned kFeatureSize = 0;        // VIRTIO_CONSOLE_F_SIZE
    static constexpr unsigned kFeatureEmergWrite = 2;  // VIRTIO_CONSOLE_F_EMERG_WRITE
    // Per process_queue()/process_backend() call.
    static constexpr unsigned kMaxChainsPerCall = 64;
    static constexpr uint64_t kMaxOutputBytesPerCall = 256 * 1024;

    // struct virtio_console_config (little-endian, like the host).
    struct __attribute__((packed)) Config {
        uint16_t cols;
        uint16_t rows;
        uint32_t max_nr_ports;
        uint32_t emerg_wr;
    };
    static_assert(sizeof(Config) == 12);

    ConsoleDevice(OutputSink output, uint16_t cols, uint16_t rows);

    // Where the host's input goes (give it to ConsoleInput); shared, so the
    // reader may outlive the device.
    std::shared_ptr<ConsoleInputBuffer> input() const { return input_; }
    // The host terminal was resized (any thread, not from a signal handler):
    // updates the config and, once the driver negotiated F_SIZE, raises the
    // config-change interrupt.
    void set_size(uint16_t cols, uint16_t rows);

    uint32_t device_type() const override { return 3; }
    std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize, kQueueSize}; }
    uint64_t offered_features() const override;
    size_t config_size() const override { return sizeof(Config); }
    void read_config(uint64_t offset, std::span<uint8_t> data) const override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;
    void activate(const GuestMemory& memory, uint64_t acked_features, std::span<Queue> queues,
                  VirtioInterrupt& interrupt) override;
    bool process_queue(size_t index) override;
    void reset() override;
    // Backend 0: the input buffer's eventfd, always waited on.
    size_t backend_count() const override { return 1; }
    int backend_fd(size_t) const override { return input_->event().fd(); }
    BackendInterest backend_interest(size_t) const override { return {true, false}; }
    bool process_backend(size_t index) override;
    // rx_bytes (input delivered), tx_bytes (output the guest sent, emerg_wr
    // included), tx_dropped (of those, bytes the output sink did not take).
    Metrics metrics() const override;
    // Writes out the rest of a transmit chain written in part.
    void prepare_save() override;
    // The console size and the input not yet delivered.
    void save_state(StateWriter& out) const override;
    void restore_state(StateReader& in) override;

  private:
    // A transmitq chain written out in part when the last call's budget ran out.
    struct PendingOutput {
        uint16_t head;
        ChainReader reader;
    };

    // The activation, and the running state that lives exactly as long.
    struct Active : Activation {
        using Activation::Activation;
        // A queue broke the protocol: leave the queues alone until reset (the
        // transport stops calling the device then too; this does not rely on it).
        bool broken = false;
        std::optional<PendingOutput> pending_output;
    };

    bool live() const { return active_ && !active_->broken; }
    // Moves pending input into receiveq buffers; true when stopped with
    // input and possibly buffers left.
    bool deliver_input();
    // Writes transmitq chains out; true when stopped with work left.
    bool transmit();

    std::shared_ptr<ConsoleInputBuffer> input_;
    // Sends to output_, counting what it does not take.
    void send(std::span<const uint8_t> bytes);

    OutputSink output_;
    uint64_t tx_dropped_ = 0;
    std::optional<Active> active_;  // between activate() and reset()
    uint64_t rx_bytes_ = 0;
    uint64_t tx_bytes_ = 0;

    // What set_size() shares with the transport's threads. It runs without
    // the transport's lock, so it cannot look at active_: activate() and
    // reset() set config_interrupt_ along with it.
    mutable std::mutex size_mutex_;
    uint16_t cols_;
    uint16_t rows_;
    VirtioInterrupt* config_interrupt_ = nullptr;  // set while F_SIZE is live
};

}  // namespace vmm
