#include "vmm/base/async_writer.hpp"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vmm/base/error.hpp"
#include "vmm/base/logger.hpp"

namespace vmm {

namespace {

int interrupt_signal() {
    return SIGRTMIN + 1;  // SIGRTMIN kicks vCPUs (vmm/core/vcpu.cpp)
}

void ignore_interrupt(int) {}

// Once per process. No SA_RESTART: the signal is there to make a write that
// waits return EINTR.
void install_interrupt_handler() {
    static std::once_flag once;
    static int error = 0;
    std::call_once(once, [] {
        struct sigaction action {};
        action.sa_handler = ignore_interrupt;
        sigemptyset(&action.sa_mask);
        action.sa_flags = 0;
        if (sigaction(interrupt_signal(), &action, nullptr) < 0) {
            error = errno;
        }
    });
    if (error != 0) {
        throw SystemError("sigaction for the output thread's signal", error);
    }
}

}  // namespace

AsyncWriter::AsyncWriter(int fd, std::string name, size_t capacity,
                         std::chrono::microseconds gather)
    : fd_(fd), name_(std::move(name)), capacity_(capacity), gather_(gather) {
    // Room for the usual batch in both buffers, allocated here: a vCPU
    // thread's write() or the writer thread would otherwise make glibc give
    // that thread a malloc arena of its own for a few bytes.
    queue_.reserve(kInitialBuffer);
    spare_.reserve(kInitialBuffer);
    install_interrupt_handler();
    // The process's signals are the event loop's: the thread starts with
    // all of them blocked and unblocks only its interrupt.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    try {
        thread_ = std::thread([this] { run(); });
    } catch (...) {
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        throw;
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    pthread_setname_np(thread_.native_handle(), "output");
}

AsyncWriter::~AsyncWriter() {
    close();
}

size_t AsyncWriter::write(std::span<const uint8_t> bytes) {
    if (bytes.empty()) {
        return 0;
    }
    std::lock_guard lock(mutex_);
    if (closing_ || failed_.load(std::memory_order_relaxed)) {
        return 0;
    }
    size_t used = queue_.size() + in_flight_;
    size_t taken = std::min(bytes.size(), used < capacity_ ? capacity_ - used : 0);
    if (taken == 0) {
        return 0;
    }
    size_t before = queue_.size();
    queue_.insert(queue_.end(), bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(taken));
    // The thread waits for a first byte, then (gathering) for enough of
    // them: only those two moments need a wake-up system call.
    if (before == 0 || (gathering_ && before < kGatherLimit && queue_.size() >= kGatherLimit)) {
        wake_.notify_one();
    }
    return taken;
}

void AsyncWriter::run_on_thread(std::function<void()> task) {
    std::unique_lock lock(mutex_);
    task_ = std::move(task);
    task_error_ = nullptr;
    wake_.notify_one();
    task_done_.wait(lock, [this] { return !task_; });
    if (task_error_) {
        std::rethrow_exception(task_error_);
    }
}

void AsyncWriter::close(std::chrono::milliseconds drain) {
    if (!thread_.joinable()) {
        return;
    }
    {
        std::unique_lock lock(mutex_);
        closing_ = true;
        wake_.notify_one();
        // Gives up only on a reader that stalls: as long as each `drain`
        // period writes something, the rest of the output is worth waiting
        // for (a slow reader, or a slow host, lost a guest's last lines).
        auto done = [this] { return (queue_.empty() && in_flight_ == 0) || finished_.load(); };
        for (;;) {
            uint64_t before = written_.load();
            if (drained_.wait_for(lock, drain, done) || written_.load() == before) {
                break;
            }
        }
        stop_now_ = true;
        wake_.notify_one();
    }
    // A write that waits on the reader returns EINTR on the signal. Sent
    // until the thread is done, as one that lands just before the thread
    // enters write() interrupts nothing; every 10 ms, as each real-time
    // signal that waits counts against the user's RLIMIT_SIGPENDING.
    while (!finished_.load()) {
        pthread_kill(thread_.native_handle(), interrupt_signal());
        std::unique_lock lock(mutex_);
        drained_.wait_for(lock, std::chrono::milliseconds(10), [this] { return finished_.load(); });
    }
    thread_.join();
    if (uint64_t lost = bytes_lost(); lost > 0) {
        log_warning("{}: {} bytes of the guest's output were never written", name_, lost);
    }
}

void AsyncWriter::run() {
    sigset_t interrupt;
    sigemptyset(&interrupt);
    sigaddset(&interrupt, interrupt_signal());
    pthread_sigmask(SIG_UNBLOCK, &interrupt, nullptr);

    std::vector<uint8_t>& batch = spare_;
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return !queue_.empty() || closing_ || task_; });
        if (task_) {
            try {
                task_();
            } catch (...) {
                task_error_ = std::current_exception();
            }
            task_ = nullptr;
            task_done_.notify_all();
            continue;
        }
        if (queue_.empty() || stop_now_.load()) {
            break;
        }
        if (gather_.count() > 0 && !closing_ && queue_.size() < kGatherLimit) {
            gathering_ = true;
            wake_.wait_for(lock, gather_,
                           [this] { return closing_ || task_ || queue_.size() >= kGatherLimit; });
            gathering_ = false;
        }
        batch.swap(queue_);  // queue_ keeps the old batch's storage
        in_flight_ = batch.size();
        lock.unlock();
        size_t done = write_out(batch);
        written_.fetch_add(done, std::memory_order_relaxed);
        lost_.fetch_add(batch.size() - done, std::memory_order_relaxed);
        batch.clear();
        lock.lock();
        in_flight_ = 0;
        if (queue_.empty()) {
            drained_.notify_all();
        }
    }
    lost_.fetch_add(queue_.size(), std::memory_order_relaxed);
    queue_.clear();
    finished_ = true;
    drained_.notify_all();
}

size_t AsyncWriter::write_out(std::span<const uint8_t> bytes) {
    size_t done = 0;
    while (done < bytes.size() && !stop_now_.load()) {
        ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
        if (n > 0) {
            done += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;  // close()'s signal, or another: the loop checks which
        }
        if (n < 0 && errno == EAGAIN) {
            // Non-blocking (a parent may have made our stdout so): wait for
            // room, a while at a time so that close() is seen.
            pollfd p{fd_, POLLOUT, 0};
            ::poll(&p, 1, 100);
            continue;
        }
        int error = n < 0 ? errno : EIO;  // write() of 0 bytes: treat as an I/O error
        failed_ = true;
        log_warning("{}: cannot write the guest's output ({}); dropping it from now on", name_,
                    std::strerror(error));
        break;
    }
    return done;
}

}  // namespace vmm
