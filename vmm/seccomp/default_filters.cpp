#include "vmm/seccomp/default_filters.hpp"

#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <initializer_list>

#include "vmm/kvm/kvm_abi.hpp"

namespace vmm::seccomp {

namespace {

struct Ioctl {
    unsigned long request;
    const char* name;
};

// The structs with a flexible array have their own numbers in C++
// (vmm/kvm/kvm_abi.hpp): the kernel sees those.
#define VMM_IOCTL(name) \
    Ioctl {             \
        name, #name     \
    }

// vCPU state, read by a snapshot and written by its load (main thread) and
// read for an error report (the vCPU's own thread); a snapshot also reads the
// vCPU's TSC frequency.
const std::initializer_list<Ioctl> kVcpuStateIoctls = {
    VMM_IOCTL(KVM_GET_REGS),
    VMM_IOCTL(KVM_SET_REGS),
    VMM_IOCTL(KVM_GET_SREGS),
    VMM_IOCTL(KVM_SET_SREGS),
    VMM_IOCTL(KVM_GET_FPU),
    VMM_IOCTL(KVM_SET_FPU),
    Ioctl{kvm_abi::kGetXsave, "KVM_GET_XSAVE"},
    Ioctl{kvm_abi::kSetXsave, "KVM_SET_XSAVE"},
    VMM_IOCTL(KVM_GET_XCRS),
    VMM_IOCTL(KVM_SET_XCRS),
    Ioctl{kvm_abi::kGetMsrs, "KVM_GET_MSRS"},
    Ioctl{kvm_abi::kSetMsrs, "KVM_SET_MSRS"},
    VMM_IOCTL(KVM_GET_LAPIC),
    VMM_IOCTL(KVM_SET_LAPIC),
    VMM_IOCTL(KVM_GET_MP_STATE),
    VMM_IOCTL(KVM_SET_MP_STATE),
    VMM_IOCTL(KVM_GET_VCPU_EVENTS),
    VMM_IOCTL(KVM_SET_VCPU_EVENTS),
    VMM_IOCTL(KVM_GET_DEBUGREGS),
    VMM_IOCTL(KVM_SET_DEBUGREGS),
    VMM_IOCTL(KVM_TRANSLATE),
    VMM_IOCTL(KVM_GET_TSC_KHZ),
};

// The VM's own state (pause/resume, snapshots) and interrupt lines (any thread that
// raises one: legacy devices run on vCPU threads).
const std::initializer_list<Ioctl> kVmIoctls = {
    VMM_IOCTL(KVM_IRQ_LINE),  VMM_IOCTL(KVM_GET_IRQCHIP),   VMM_IOCTL(KVM_SET_IRQCHIP),
    VMM_IOCTL(KVM_GET_PIT2),  VMM_IOCTL(KVM_SET_PIT2),      VMM_IOCTL(KVM_GET_CLOCK),
    VMM_IOCTL(KVM_SET_CLOCK), VMM_IOCTL(KVM_GET_DIRTY_LOG),
};

// The serial port's coalesced THR writes turned on and off as the guest
// enables and disables its THRE interrupt (vCPU threads), or restores it.
const std::initializer_list<Ioctl> kCoalescedPioIoctls = {
    VMM_IOCTL(KVM_REGISTER_COALESCED_MMIO),
    VMM_IOCTL(KVM_UNREGISTER_COALESCED_MMIO),
};

// A device activated by the driver (on the vCPU thread that wrote the
// status) or reset sets its tap's offloads.
const std::initializer_list<Ioctl> kTapIoctls = {
    VMM_IOCTL(TUNSETOFFLOAD),
    VMM_IOCTL(TUNSETVNETHDRSZ),
};

// The terminal: raw mode restored at exit, the window size for the console.
const std::initializer_list<Ioctl> kTerminalIoctls = {
    VMM_IOCTL(TCGETS),  VMM_IOCTL(TCSETS),     VMM_IOCTL(TCSETSW),
    VMM_IOCTL(TCSETSF), VMM_IOCTL(TIOCGWINSZ),
};

const std::initializer_list<Ioctl> kFdIoctls = {
    VMM_IOCTL(FIONBIO),
    VMM_IOCTL(FIOCLEX),
    VMM_IOCTL(FIONREAD),
};

#undef VMM_IOCTL

void allow(ThreadFilter& filter, std::initializer_list<const char*> names) {
    for (const char* name : names) {
        filter.rules.push_back(SyscallRule{name, {}, {}});
    }
}

void allow_ioctls(ThreadFilter& filter, std::initializer_list<Ioctl> requests) {
    for (const Ioctl& ioctl : requests) {
        ArgCondition request;
        request.index = 1;
        request.width = ArgCondition::Width::Dword;
        request.value = ioctl.request;
        request.comment = ioctl.name;
        filter.rules.push_back(SyscallRule{"ioctl", {request}, ioctl.name});
    }
}

// mmap and mprotect, never with PROT_EXEC: nothing of ours makes code at run
// time, and an attacker who could would want exactly that.
void allow_memory(ThreadFilter& filter) {
    for (const char* name : {"mmap", "mprotect"}) {
        ArgCondition no_exec;
        no_exec.index = 2;
        no_exec.width = ArgCondition::Width::Dword;
        no_exec.op = ArgCondition::Op::MaskedEq;
        no_exec.mask = PROT_EXEC;
        no_exec.value = 0;
        no_exec.comment = "no PROT_EXEC";
        filter.rules.push_back(SyscallRule{name, {no_exec}, {}});
    }
    allow(filter, {"munmap", "mremap", "madvise", "brk"});
}

// What every thread of ours needs: the C++ runtime (locks, memory, time,
// thread exit), kicks between threads and writes of log lines.
void allow_common(ThreadFilter& filter) {
    allow(filter, {
                      "futex",
                      "read",
                      "write",
                      "readv",
                      "writev",
                      "close",
                      "fstat",
                      "newfstatat",
                      "lseek",
                      "fcntl",
                      "epoll_ctl",
                      "eventfd2",
                      "timerfd_settime",
                      "clock_gettime",
                      "clock_nanosleep",
                      "nanosleep",
                      "sched_yield",
                      "getpid",
                      "gettid",
                      "tgkill",
                      "rt_sigprocmask",
                      "rt_sigreturn",
                      "sigaltstack",
                      "restart_syscall",
                      "exit",
                      "exit_group",
                  });
    allow_memory(filter);
    allow_ioctls(filter, kFdIoctls);
}

ThreadFilter vmm_thread_filter() {
    ThreadFilter filter;
    filter.default_action = {Action::Kind::Trap, 0};
    allow_common(filter);
    allow(filter, {
                      // the event loop and the API socket
                      "epoll_wait",
                      "epoll_pwait",
                      "ppoll",
                      "poll",
                      "accept",
                      "accept4",
                      "recvfrom",
                      "recvmsg",
                      "sendto",
                      "sendmsg",
                      "shutdown",
                      "getsockopt",
                      "setsockopt",
                      "getsockname",
                      "timerfd_create",
                      "timerfd_gettime",
                      "pipe2",
                      "dup",
                      "dup3",
                      // disks: the sync and io_uring engines, flush, discard
                      "pread64",
                      "pwrite64",
                      "preadv",
                      "pwritev",
                      "preadv2",
                      "pwritev2",
                      "fsync",
                      "fdatasync",
                      "fallocate",
                      "io_uring_enter",
                      "io_uring_register",
                      // the API after boot: logger and metrics files, the
                      // socket removed at exit
                      "openat",
                      "statx",
                      "unlink",
                      "unlinkat",
                      "ftruncate",
                      // virtio-rng
                      "getrandom",
                      // signal handlers: pause/resume, termination
                      "rt_sigaction",
                  });
    allow_ioctls(filter, kVcpuStateIoctls);
    allow_ioctls(filter, kVmIoctls);
    allow_ioctls(filter, kCoalescedPioIoctls);
    allow_ioctls(filter, kTapIoctls);
    allow_ioctls(filter, kTerminalIoctls);
    return filter;
}

ThreadFilter vcpu_thread_filter() {
    ThreadFilter filter;
    filter.default_action = {Action::Kind::Trap, 0};
    allow_common(filter);
    ArgCondition run;
    run.index = 1;
    run.width = ArgCondition::Width::Dword;
    run.value = KVM_RUN;
    run.comment = "KVM_RUN";
    filter.rules.push_back(SyscallRule{"ioctl", {run}, "KVM_RUN"});
    allow_ioctls(filter, kVcpuStateIoctls);
    allow_ioctls(filter, {Ioctl{KVM_IRQ_LINE, "KVM_IRQ_LINE"}});
    allow_ioctls(filter, kCoalescedPioIoctls);
    allow_ioctls(filter, kTapIoctls);
    return filter;
}

}  // namespace

FilterSet default_filters() {
    return FilterSet{{"vmm", vmm_thread_filter()}, {"vcpu", vcpu_thread_filter()}};
}

}  // namespace vmm::seccomp
