// Runs the VM's virtio devices on the I/O thread: each device's transport
// goes on the MMIO bus at the slot the platform gave it (arch/arch.hpp), with
// an ioeventfd per queue and an irqfd; start() then waits on every queue's
// and backend's fd on the event loop and calls into the device when one is
// ready.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <memory>
#include <string>
#include <vector>

#include "arch/arch.hpp"
#include "devices/virtio/mmio_transport.hpp"
#include "vmm/core/bus.hpp"
#include "vmm/kvm/vm_fd.hpp"

namespace vmm {

class VirtioIoDispatcher {
  public:
    VirtioIoDispatcher(const VmFd& vm, Bus& mmio_bus, const GuestMemory& memory)
        : vm_(vm), mmio_bus_(mmio_bus), memory_(memory) {}

    // `slot`: where the guest finds it (the boot setup told the guest).
    // Returns its transport, which lives as long as this dispatcher.
    MmioTransport& add(std::unique_ptr<VirtioDevice> device, const std::string& name,
                       const arch::VirtioMmioSlot& slot);
    // Starts watching every queue's eventfd on `io`.
    void start(boost::asio::io_context& io);

    const std::vector<std::shared_ptr<MmioTransport>>& transports() const { return transports_; }

  private:
    struct DeviceWatches;
    // A queue's notification eventfd.
    struct QueueWatch {
        DeviceWatches* device;
        std::shared_ptr<MmioTransport> transport;
        size_t queue;
        std::unique_ptr<boost::asio::posix::stream_descriptor> descriptor;
    };
    // One of a device's backend fds, waited on as the device asks.
    struct BackendWatch {
        std::shared_ptr<MmioTransport> transport;
        size_t index;
        std::unique_ptr<boost::asio::posix::stream_descriptor> descriptor;
        bool read_armed = false;
        bool write_armed = false;
        bool rerun_posted = false;
    };
    struct DeviceWatches {
        std::vector<std::unique_ptr<QueueWatch>> queues;
        std::vector<std::unique_ptr<BackendWatch>> backends;
    };

    void wait(QueueWatch& watch);
    void run_backend(DeviceWatches& device, BackendWatch& watch);
    // Arms the backend waits the device wants now.
    void update_backends(DeviceWatches& device);

    boost::asio::io_context* io_ = nullptr;
    const VmFd& vm_;
    Bus& mmio_bus_;
    const GuestMemory& memory_;
    std::vector<std::shared_ptr<MmioTransport>> transports_;
    std::vector<std::unique_ptr<DeviceWatches>> watches_;
};

}  // namespace vmm
