#include "vmm/core/terminal.hpp"

#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <initializer_list>

namespace vmm {

namespace {

// Saved state for the fatal-signal path, which may only use async-signal-safe
// calls (tcsetattr is one).
struct termios g_saved;
volatile sig_atomic_t g_saved_fd = -1;

void restore_and_reraise(int signal_number) {
    if (g_saved_fd >= 0) {
        tcsetattr(g_saved_fd, TCSANOW, &g_saved);
    }
    ::signal(signal_number, SIG_DFL);
    ::raise(signal_number);
}

void install_fatal_handlers() {
    struct sigaction action {};
    action.sa_handler = restore_and_reraise;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND;
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) {
        sigaction(sig, &action, nullptr);
    }
}

}  // namespace

RawTerminal::RawTerminal(int fd) : fd_(fd) {
    if (!isatty(fd) || tcgetattr(fd, &g_saved) < 0) {
        return;
    }
    struct termios raw = g_saved;
    // Raw input: no echo, no line editing, no signals from ^C (the guest gets
    // the byte; Ctrl-A x quits the VMM). Output post-processing stays on.
    raw.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    raw.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    raw.c_cflag &= ~(CSIZE | PARENB);
    raw.c_cflag |= CS8;
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    g_saved_fd = fd;
    install_fatal_handlers();
    if (tcsetattr(fd, TCSANOW, &raw) == 0) {
        active_ = true;
    } else {
        g_saved_fd = -1;
    }
}

RawTerminal::~RawTerminal() {
    if (active_) {
        tcsetattr(fd_, TCSANOW, &g_saved);
        g_saved_fd = -1;
    }
}

std::pair<uint16_t, uint16_t> terminal_size(int fd) {
    winsize size{};
    if (::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 && size.ws_row > 0) {
        return {size.ws_col, size.ws_row};
    }
    return {80, 25};
}

}  // namespace vmm
