#include "vmm/core/vcpu.hpp"

#include <signal.h>

#include <cstring>

#include "arch/arch.hpp"
#include "vmm/base/error.hpp"

namespace vmm {

namespace {

// How long a pause wait sleeps before it looks at the stop flag again.
constexpr auto kPauseWaitSlice = std::chrono::milliseconds(20);

int kick_signal() {
    return SIGRTMIN;
}

void ignore_kick(int) {}

const char* exit_reason_name(uint32_t reason) {
    switch (reason) {
        case KVM_EXIT_UNKNOWN:
            return "unknown";
        case KVM_EXIT_EXCEPTION:
            return "exception";
        case KVM_EXIT_HLT:
            return "hlt";
        case KVM_EXIT_DEBUG:
            return "debug";
        case KVM_EXIT_FAIL_ENTRY:
            return "fail entry";
        case KVM_EXIT_NMI:
            return "nmi";
        default:
            return "unexpected";
    }
}

}  // namespace

Vcpu::~Vcpu() {
    kick();
    thread_.join();
}

void Vcpu::install_kick_handler() {
    struct sigaction action {};
    action.sa_handler = ignore_kick;
    sigemptyset(&action.sa_mask);
    // No SA_RESTART: the point of the signal is to make KVM_RUN return EINTR.
    action.sa_flags = 0;
    if (sigaction(kick_signal(), &action, nullptr) < 0) {
        throw_errno("sigaction for the vCPU kick signal");
    }
}

void Vcpu::start(const seccomp::ThreadFilters* filters, std::latch& guest_entry) {
    thread_.start(fmt::format("vcpu{}", fd_.id()),
                  [this, filters, &guest_entry] { run_loop(filters, guest_entry); });
}

void Vcpu::kick() {
    // immediate_exit covers the window before the thread enters KVM_RUN; the
    // signal covers the thread already inside it.
    fd_.run_area()->immediate_exit = 1;
    thread_.signal(kick_signal());
    // A paused thread waits on the condition; the waits also time out, so
    // this notify needs no lock (kick() runs from exit requests anywhere).
    pause_cv_.notify_all();
}

void Vcpu::request_pause() {
    {
        std::lock_guard lock(pause_mutex_);
        pause_requested_ = true;
    }
    kick();
}

void Vcpu::wait_paused() {
    std::unique_lock lock(pause_mutex_);
    while (!paused_ && thread_.running() && !context_.exit.requested()) {
        pause_cv_.wait_for(lock, kPauseWaitSlice);
        if (!paused_) {
            // The first kick may have been lost (join_within() says how).
            lock.unlock();
            kick();
            lock.lock();
        }
    }
}

void Vcpu::resume() {
    {
        std::lock_guard lock(pause_mutex_);
        pause_requested_ = false;
    }
    pause_cv_.notify_all();
}

void Vcpu::park_if_paused() {
    std::unique_lock lock(pause_mutex_);
    if (pause_requested_) {
        // KVM_RUN returned EINTR, so no exit is half done: the state is whole.
        paused_ = true;
        pause_cv_.notify_all();
        while (pause_requested_ && !context_.exit.requested()) {
            pause_cv_.wait_for(lock, kPauseWaitSlice);
        }
        paused_ = false;
    }
    // Cleared before the loop re-checks for a stop, so no stop kick is lost.
    fd_.run_area()->immediate_exit = 0;
}

void Vcpu::join() {
    thread_.join();
}

bool Vcpu::join_within(std::chrono::milliseconds limit) {
    // A kick can be lost: a PVM host was seen to leave a halted vCPU in
    // KVM_RUN through any number of signals. Kick again while waiting.
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (thread_.running() && std::chrono::steady_clock::now() < deadline) {
        kick();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (thread_.running()) {
        return false;
    }
    join();
    return true;
}

void Vcpu::run_loop(const seccomp::ThreadFilters* filters, std::latch& guest_entry) {
    try {
        if (filters != nullptr) {
            filters->install(seccomp::ThreadKind::Vcpu);
        }
        guest_entry.wait();
        park_if_paused();  // a VM restored paused waits for resume()
        while (!context_.exit.requested()) {
            context_.trace.mark(BootTrace::Event::FirstKvmRun);
            bool completed = fd_.run();
            if (context_.pio_ring != nullptr) {
                context_.pio_ring->drain();
            }
            if (!completed) {
                park_if_paused();
                continue;  // kicked: re-check whether to stop
            }
            if (!handle_exit()) {
                break;
            }
        }
    } catch (const std::exception& e) {
        context_.exit.request(exit_status::kError, fmt::format("vCPU {}: {}", fd_.id(), e.what()),
                              true);
    }
}

void Vcpu::handle_io() {
    kvm_run* run = fd_.run_area();
    const auto& io = run->io;
    // SAFETY: data_offset and size*count come from KVM and stay within the
    // kvm_run mapping (KVM_GET_VCPU_MMAP_SIZE covers the PIO data page).
    if (io.data_offset + uint64_t(io.size) * io.count > fd_.run_area_size()) {
        throw Error("KVM reported port I/O data outside the run area");
    }
    auto* data = reinterpret_cast<uint8_t*>(run) + io.data_offset;
    for (uint32_t i = 0; i < io.count; ++i) {
        std::span<uint8_t> bytes(data + size_t(i) * io.size, io.size);
        if (io.direction == KVM_EXIT_IO_OUT) {
            context_.pio.write(io.port, bytes);
        } else if (!context_.pio.read(io.port, bytes)) {
            // No device: the bus floats high, as on real hardware.
            std::memset(bytes.data(), 0xff, bytes.size());
        }
    }
}

void Vcpu::handle_mmio() {
    auto& mmio = fd_.run_area()->mmio;
    size_t length = std::min<size_t>(mmio.len, sizeof(mmio.data));
    std::span<uint8_t> bytes(mmio.data, length);
    if (mmio.is_write) {
        context_.mmio.write(mmio.phys_addr, bytes);
    } else if (!context_.mmio.read(mmio.phys_addr, bytes)) {
        std::memset(bytes.data(), 0xff, bytes.size());
    }
}

bool Vcpu::handle_exit() {
    kvm_run* run = fd_.run_area();
    switch (run->exit_reason) {
        case KVM_EXIT_IO:
            handle_io();
            return true;
        case KVM_EXIT_MMIO:
            handle_mmio();
            return true;
        case KVM_EXIT_INTR:
            return true;
        case KVM_EXIT_SHUTDOWN:
            context_.exit.request(
                exit_status::kGuestStopped,
                fmt::format("vCPU {}: triple fault (KVM_EXIT_SHUTDOWN)", fd_.id()));
            return false;
        case KVM_EXIT_SYSTEM_EVENT:
            switch (run->system_event.type) {
                case KVM_SYSTEM_EVENT_SHUTDOWN:
                    context_.exit.request(exit_status::kGuestStopped, "guest powered off");
                    return false;
                case KVM_SYSTEM_EVENT_RESET:
                    context_.exit.request(exit_status::kGuestStopped, "guest reset");
                    return false;
                default:
                    context_.exit.request(exit_status::kGuestFault,
                                          fmt::format("vCPU {}: guest crashed (system event {})",
                                                      fd_.id(), run->system_event.type),
                                          true);
                    return false;
            }
        case KVM_EXIT_INTERNAL_ERROR: {
            auto report = arch::handle_emulation_failure(fd_, context_.memory);
            if (!report) {
                return true;
            }
            if (Kvm::host_is_pvm()) {
                *report +=
                    "\n  (this host's KVM is PVM: guest code runs under KVM's instruction "
                    "emulator, which lacks this instruction; see README, 'PVM hosts')";
            }
            context_.exit.request(exit_status::kGuestFault, *report, true);
            return false;
        }
        case KVM_EXIT_FAIL_ENTRY:
            context_.exit.request(
                exit_status::kGuestFault,
                fmt::format("vCPU {}: KVM could not enter the guest (hardware reason {:#x})\n{}",
                            fd_.id(), run->fail_entry.hardware_entry_failure_reason,
                            arch::describe_vcpu(fd_)),
                true);
            return false;
        default:
            context_.exit.request(
                exit_status::kGuestFault,
                fmt::format("vCPU {}: unhandled KVM exit {} ({})\n{}", fd_.id(), run->exit_reason,
                            exit_reason_name(run->exit_reason), arch::describe_vcpu(fd_)),
                true);
            return false;
    }
}

}  // namespace vmm
