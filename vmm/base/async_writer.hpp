// Output that never makes its writer wait: the guest's console (the 8250 on
// a vCPU thread, virtio-console on the I/O thread) goes to stdout or to
// serial_out_path, whose reader may stall (a full pipe nobody reads, a
// terminal on hold). write() only copies into a bounded queue, which a
// thread of its own writes out; what does not fit is dropped and counted. A
// slow reader so loses output only once it is `capacity` bytes behind, and a
// stalled one costs nothing but the queue.
//
// Why a thread and not the event loop: the fd is usually our stdout, whose
// open file is shared with the parent, so setting O_NONBLOCK on it would
// change the parent's too; a blocking write on a thread of its own waits on
// a pipe, a terminal, a socket or a file alike. close() gives that thread a
// short time to drain, then interrupts a write that still waits with a
// signal (SIGRTMIN + 1, whose handler does nothing and is installed without
// SA_RESTART), so shutdown never waits on the reader either.
#pragma once

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace vmm {

class AsyncWriter {
  public:
    static constexpr size_t kDefaultCapacity = 1 << 20;
    // How long close() (and the destructor) waits for the queue to drain
    // while nothing gets written (a reader that makes progress is waited for).
    static constexpr std::chrono::milliseconds kDefaultDrain{500};
    // How long the thread lets bytes gather after the first one before it
    // writes them: a guest printing to its serial port hands over one byte
    // per exit, and a wake-up and a write(2) for each would cost as much as
    // the exit itself (and wake whoever reads the fd as often).
    static constexpr std::chrono::microseconds kDefaultGather{2000};
    // Writes at once, gathering or not, when this much is queued.
    static constexpr size_t kGatherLimit = 64 * 1024;

    // `fd` is borrowed and must stay open until close(). `name` says where
    // the output goes, in the one log line a write error gets.
    AsyncWriter(int fd, std::string name, size_t capacity = kDefaultCapacity,
                std::chrono::microseconds gather = kDefaultGather);
    ~AsyncWriter();
    AsyncWriter(const AsyncWriter&) = delete;
    AsyncWriter& operator=(const AsyncWriter&) = delete;

    // Any thread, never waits on the fd: queues what fits and returns how
    // many bytes that was (none after a write error or close()).
    size_t write(std::span<const uint8_t> bytes);

    // Waits for what is queued to be written, as long as each `drain` period
    // writes some of it, then stops the thread, interrupting a write that
    // waits; what is left is dropped (and said in one log line). Later
    // writes are dropped too. Idempotent; not from two threads at once.
    void close(std::chrono::milliseconds drain = kDefaultDrain);

    // Runs `task` on the writer thread (e.g. installing its seccomp filter)
    // and waits for it; rethrows what it threw.
    void run_on_thread(std::function<void()> task);

    uint64_t bytes_written() const { return written_.load(std::memory_order_relaxed); }
    // Queued, then lost: a write error, or still queued when close() gave up.
    uint64_t bytes_lost() const { return lost_.load(std::memory_order_relaxed); }
    bool failed() const { return failed_.load(std::memory_order_relaxed); }

  private:
    static constexpr size_t kInitialBuffer = 4096;

    void run();
    // Writes `bytes` out; returns how many made it before an error or stop.
    size_t write_out(std::span<const uint8_t> bytes);

    int fd_;
    std::string name_;
    size_t capacity_;
    std::chrono::microseconds gather_;

    std::mutex mutex_;
    std::condition_variable wake_;     // to the thread: bytes queued, or closing
    std::condition_variable drained_;  // to close(): the queue is empty
    std::vector<uint8_t> queue_;       // waiting for the thread
    std::vector<uint8_t> spare_;       // the thread's batch (swapped with queue_)
    size_t in_flight_ = 0;             // taken by the thread, not yet written
    bool closing_ = false;
    bool gathering_ = false;         // the thread waits out gather_ (a wake-up would end it early)
    std::function<void()> task_;     // for the thread to run (run_on_thread)
    std::exception_ptr task_error_;  // what it threw
    std::condition_variable task_done_;

    std::atomic<bool> stop_now_{false};  // give up, even mid-write
    std::atomic<bool> finished_{false};  // the thread is past its last write
    std::atomic<bool> failed_{false};
    std::atomic<uint64_t> written_{0};
    std::atomic<uint64_t> lost_{0};
    std::thread thread_;
};

}  // namespace vmm
