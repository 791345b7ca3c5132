#include "vmm/virtio_mmio_devices.hpp"

#include <unistd.h>

namespace vmm {

void VirtioMmioDevices::add(std::unique_ptr<VirtioDevice> device, const std::string& name) {
    uint32_t index = static_cast<uint32_t>(transports_.size());
    if (kFirstIrq + index > kLastIrq) {
        throw Error(fmt::format("too many virtio devices (at most {})", kLastIrq - kFirstIrq + 1));
    }
    uint64_t base = kBase + uint64_t(index) * MmioTransport::kSize;
    auto transport = std::make_shared<MmioTransport>(memory_, std::move(device), name);
    mmio_bus_.insert(base, MmioTransport::kSize, transport);
    for (size_t q = 0; q < transport->queue_count(); ++q) {
        vm_.register_ioeventfd(GuestAddress(base + MmioTransport::kQueueNotifyOffset), 4, q,
                               transport->queue_event(q).fd());
    }
    vm_.register_irqfd(transport->interrupt_event().fd(), kFirstIrq + index);
    transports_.push_back(std::move(transport));
}

std::string VirtioMmioDevices::kernel_cmdline() const {
    std::string line;
    for (size_t i = 0; i < transports_.size(); ++i) {
        line += fmt::format("{}virtio_mmio.device=4K@{:#x}:{}", line.empty() ? "" : " ",
                            kBase + i * MmioTransport::kSize, kFirstIrq + i);
    }
    return line;
}

void VirtioMmioDevices::start(boost::asio::io_context& io) {
    for (const auto& transport : transports_) {
        for (size_t q = 0; q < transport->queue_count(); ++q) {
            watch(io, transport, q, transport->queue_event(q).fd());
        }
        if (transport->completion_event_fd() >= 0) {
            watch(io, transport, Watch::kCompletions, transport->completion_event_fd());
        }
    }
}

void VirtioMmioDevices::watch(boost::asio::io_context& io,
                              const std::shared_ptr<MmioTransport>& transport, size_t queue,
                              int fd) {
    auto entry = std::make_unique<Watch>();
    entry->transport = transport;
    entry->queue = queue;
    // The descriptor closes what it holds: give it its own copy.
    int copy = ::dup(fd);
    if (copy < 0) {
        throw_errno("dup of a device eventfd");
    }
    entry->descriptor = std::make_unique<boost::asio::posix::stream_descriptor>(io, copy);
    wait(*entry);
    watches_.push_back(std::move(entry));
}

void VirtioMmioDevices::wait(Watch& watch) {
    watch.descriptor->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                                 [this, &watch](const boost::system::error_code& error) {
                                     if (error) {
                                         return;
                                     }
                                     if (watch.queue == Watch::kCompletions) {
                                         watch.transport->process_completion_event();
                                     } else {
                                         watch.transport->process_queue_event(watch.queue);
                                     }
                                     this->wait(watch);
                                 });
}

}  // namespace vmm
