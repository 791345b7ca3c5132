#include "vmm/seccomp/violation_report.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstring>

#include "vmm/base/error.hpp"
#include "vmm/base/logger.hpp"

namespace vmm::seccomp {

namespace {

// Set before any filter exists; the handler only reads it.
std::span<const char* const> g_syscall_names;

thread_local char t_thread_name[16] = "?";
thread_local char t_filter_kind[8] = "?";

// A message built without allocating or formatting library calls.
class Line {
  public:
    Line& text(const char* s) {
        while (*s != '\0' && used_ < sizeof(buffer_)) {
            buffer_[used_++] = *s++;
        }
        return *this;
    }
    Line& number(unsigned long value) {
        char digits[24];
        size_t count = 0;
        do {
            digits[count++] = static_cast<char>('0' + value % 10);
            value /= 10;
        } while (value != 0);
        while (count > 0 && used_ < sizeof(buffer_)) {
            buffer_[used_++] = digits[--count];
        }
        return *this;
    }
    Line& hex(unsigned long value) {
        char digits[16];
        size_t count = 0;
        do {
            digits[count++] = "0123456789abcdef"[value % 16];
            value /= 16;
        } while (value != 0);
        text("0x");
        while (count > 0 && used_ < sizeof(buffer_)) {
            buffer_[used_++] = digits[--count];
        }
        return *this;
    }
    void write_to(int fd) const {
        size_t done = 0;
        while (done < used_) {
            ssize_t n = ::write(fd, buffer_ + done, used_ - done);
            if (n <= 0) {
                return;
            }
            done += static_cast<size_t>(n);
        }
    }

  private:
    char buffer_[256];
    size_t used_ = 0;
};

void on_sigsys(int, siginfo_t* info, void* context) {
    int number = info->si_syscall;
    const auto* registers = static_cast<const ucontext_t*>(context);
#if defined(__x86_64__)
    const greg_t* r = registers->uc_mcontext.gregs;
    const unsigned long args[6] = {
        static_cast<unsigned long>(r[REG_RDI]), static_cast<unsigned long>(r[REG_RSI]),
        static_cast<unsigned long>(r[REG_RDX]), static_cast<unsigned long>(r[REG_R10]),
        static_cast<unsigned long>(r[REG_R8]),  static_cast<unsigned long>(r[REG_R9])};
#elif defined(__aarch64__)
    const auto* r = registers->uc_mcontext.regs;
    const unsigned long args[6] = {r[0], r[1], r[2], r[3], r[4], r[5]};
#else
#error "seccomp reporting: unknown architecture"
#endif
    Line line;
    line.text("vmm: seccomp: thread ")
        .text(t_thread_name)
        .text(" (")
        .text(t_filter_kind)
        .text(" filter) called ");
    if (number >= 0 && static_cast<size_t>(number) < g_syscall_names.size() &&
        g_syscall_names[static_cast<size_t>(number)] != nullptr) {
        line.text(g_syscall_names[static_cast<size_t>(number)])
            .text(" (syscall ")
            .number(static_cast<unsigned>(number));
    } else {
        line.text("syscall ").number(static_cast<unsigned>(number)).text(" (unnamed");
    }
    // The first arguments tell an ioctl's request or an mmap's protection.
    line.text(", arguments ").hex(args[0]).text(" ").hex(args[1]).text(" ").hex(args[2]);
    line.text("), which its filter does not allow: killing the process with SIGSYS\n");
    line.write_to(STDERR_FILENO);
    int report_fd = Logger::instance().file_fd();
    if (report_fd >= 0 && report_fd != STDERR_FILENO) {
        line.write_to(report_fd);
    }
    // The same call again, with the same arguments, traps again; with SIGSYS
    // blocked in this handler the kernel then resets it to its default
    // action, and the whole process dies of SIGSYS, core and all.
    ::syscall(number, args[0], args[1], args[2], args[3], args[4], args[5]);
    ::_exit(128 + SIGSYS);  // not reached
}

}  // namespace

void install_violation_handler(std::span<const char* const> syscall_names) {
    g_syscall_names = syscall_names;
    struct sigaction action {};
    action.sa_sigaction = on_sigsys;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (::sigaction(SIGSYS, &action, nullptr) < 0) {
        throw_errno("sigaction(SIGSYS)");
    }
}

void label_this_thread(std::string_view filter_kind) {
    if (pthread_getname_np(pthread_self(), t_thread_name, sizeof(t_thread_name)) != 0) {
        std::strcpy(t_thread_name, "?");
    }
    size_t length = std::min(filter_kind.size(), sizeof(t_filter_kind) - 1);
    std::memcpy(t_filter_kind, filter_kind.data(), length);
    t_filter_kind[length] = '\0';
}

}  // namespace vmm::seccomp
