#include "vmm/core/virtio_io_dispatcher.hpp"

#include <unistd.h>

#include <boost/asio/post.hpp>

namespace vmm {

MmioTransport& VirtioIoDispatcher::add(std::unique_ptr<VirtioDevice> device,
                                       const std::string& name, const arch::VirtioMmioSlot& slot) {
    auto transport = std::make_shared<MmioTransport>(memory_, std::move(device), name);
    mmio_bus_.insert(slot.address, MmioTransport::kSize, transport);
    for (size_t q = 0; q < transport->queue_count(); ++q) {
        vm_.register_ioeventfd(GuestAddress(slot.address + MmioTransport::kQueueNotifyOffset), 4, q,
                               transport->queue_event(q).fd());
    }
    vm_.register_irqfd(transport->interrupt_event().fd(), slot.irq);
    transports_.push_back(std::move(transport));
    return *transports_.back();
}

namespace {

// The descriptor closes what it holds: give it its own copy of the fd.
std::unique_ptr<boost::asio::posix::stream_descriptor> watch_fd(boost::asio::io_context& io, int fd,
                                                                const char* what) {
    int copy = ::dup(fd);
    if (copy < 0) {
        throw_errno(fmt::format("dup of a device {}", what));
    }
    return std::make_unique<boost::asio::posix::stream_descriptor>(io, copy);
}

}  // namespace

void VirtioIoDispatcher::start(boost::asio::io_context& io) {
    io_ = &io;
    for (const auto& transport : transports_) {
        auto device = std::make_unique<DeviceWatches>();
        for (size_t q = 0; q < transport->queue_count(); ++q) {
            auto entry = std::make_unique<QueueWatch>();
            entry->device = device.get();
            entry->transport = transport;
            entry->queue = q;
            entry->descriptor = watch_fd(io, transport->queue_event(q).fd(), "queue eventfd");
            device->queues.push_back(std::move(entry));
        }
        for (size_t b = 0; b < transport->backend_count(); ++b) {
            auto entry = std::make_unique<BackendWatch>();
            entry->transport = transport;
            entry->index = b;
            entry->descriptor = watch_fd(io, transport->backend_fd(b), "backend fd");
            device->backends.push_back(std::move(entry));
        }
        watches_.push_back(std::move(device));
    }
    for (auto& device : watches_) {
        for (auto& queue : device->queues) {
            wait(*queue);
        }
        update_backends(*device);
    }
}

void VirtioIoDispatcher::wait(QueueWatch& watch) {
    watch.descriptor->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                                 [this, &watch](const boost::system::error_code& error) {
                                     if (error) {
                                         return;
                                     }
                                     watch.transport->process_queue_event(watch.queue);
                                     update_backends(*watch.device);
                                     this->wait(watch);
                                 });
}

void VirtioIoDispatcher::run_backend(DeviceWatches& device, BackendWatch& watch) {
    if (watch.transport->process_backend_event(watch.index) && !watch.rerun_posted) {
        // Budget spent with work left: again on a later loop turn, after
        // the other devices had theirs.
        watch.rerun_posted = true;
        boost::asio::post(*io_, [this, &device, &watch] {
            watch.rerun_posted = false;
            run_backend(device, watch);
        });
    }
    update_backends(device);
}

void VirtioIoDispatcher::update_backends(DeviceWatches& device) {
    using Descriptor = boost::asio::posix::stream_descriptor;
    for (auto& entry : device.backends) {
        BackendWatch& watch = *entry;
        auto interest = watch.transport->backend_interest(watch.index);
        if (interest.readable && !watch.read_armed) {
            watch.read_armed = true;
            watch.descriptor->async_wait(
                Descriptor::wait_read, [this, &device, &watch](const boost::system::error_code& e) {
                    watch.read_armed = false;
                    if (!e) {
                        run_backend(device, watch);
                    }
                });
        }
        if (interest.writable && !watch.write_armed) {
            watch.write_armed = true;
            watch.descriptor->async_wait(
                Descriptor::wait_write,
                [this, &device, &watch](const boost::system::error_code& e) {
                    watch.write_armed = false;
                    if (!e) {
                        run_backend(device, watch);
                    }
                });
        }
    }
}

}  // namespace vmm
