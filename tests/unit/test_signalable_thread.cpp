// SignalableThread, the thread of a vCPU: a signal (a vCPU kick) may come
// from any thread at any moment of the thread's life, and must only ever
// reach a thread that is there.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <thread>
#include <vector>

#include "vmm/core/signalable_thread.hpp"

using vmm::SignalableThread;

namespace {

std::atomic<int> signals_seen{0};

void count_signal(int) {
    signals_seen.fetch_add(1, std::memory_order_relaxed);
}

// A real-time signal of the tests' own, with a handler that counts.
int test_signal() {
    static const int sig = [] {
        struct sigaction action {};
        action.sa_handler = count_signal;
        sigemptyset(&action.sa_mask);
        sigaction(SIGRTMIN + 3, &action, nullptr);
        return SIGRTMIN + 3;
    }();
    return sig;
}

}  // namespace

TEST_CASE("SignalableThread signals only while its body runs", "[signalable_thread]") {
    int sig = test_signal();
    SignalableThread thread;
    CHECK_FALSE(thread.running());
    CHECK_FALSE(thread.signal(sig));  // never started
    std::atomic<bool> release{false};
    int before = signals_seen.load();
    thread.start("test-body", [&] {
        while (!release.load()) {
            std::this_thread::yield();
        }
    });
    CHECK(thread.running());
    CHECK(thread.signal(sig));
    // The handler runs on the thread before its next instruction in user space.
    while (signals_seen.load() == before) {
        std::this_thread::yield();
    }
    release = true;
    while (thread.running()) {
        std::this_thread::yield();
    }
    CHECK_FALSE(thread.signal(sig));  // ended, not joined yet
    thread.join();
    CHECK_FALSE(thread.signal(sig));  // joined
    thread.join();                    // twice is harmless
}

// The vCPU case: the first vCPU's guest stops the VM at once, and its stop
// kicks every vCPU while the others are still being started (or already
// ended, or joined). A kick that read a thread handle not yet set sent the
// signal to handle 0: SIGSEGV. Here two kickers each kick a few times the
// moment a round begins, while the owner starts a thread whose body ends at
// once and joins it: kicks land before, during and after start and join.
TEST_CASE("SignalableThread: signals racing start, end and join reach no missing thread",
          "[signalable_thread]") {
    int sig = test_signal();
    SignalableThread thread;
    constexpr int kRounds = 1000;
    constexpr int kKickers = 2;
    std::atomic<int> round{-1};
    std::atomic<int> kicked{0};
    std::atomic<uint64_t> sent{0};
    std::vector<std::thread> kickers;
    for (int k = 0; k < kKickers; ++k) {
        kickers.emplace_back([&] {
            for (int r = 0; r < kRounds; ++r) {
                while (round.load() < r) {
                    std::this_thread::yield();
                }
                for (int i = 0; i < 3; ++i) {
                    sent += thread.signal(sig) ? 1 : 0;
                }
                ++kicked;
            }
        });
    }
    for (int r = 0; r < kRounds; ++r) {
        round = r;
        thread.start("test-short", [] {});  // ends at once, like a guest that exits
        while (kicked.load() < (r + 1) * kKickers) {
            std::this_thread::yield();
        }
        thread.join();
    }
    for (auto& kicker : kickers) {
        kicker.join();
    }
    CHECK_FALSE(thread.running());
    CHECK(kicked.load() == kRounds * kKickers);
    INFO("kicks that found the thread running: " << sent.load());
    SUCCEED();
}
