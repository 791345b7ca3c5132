// Token buckets and the rate limiter: Firecracker's semantics (size, refill
// time, one-time burst; zero means no limit), exact refill arithmetic, a
// request larger than the bucket, and the timerfd a throttled device waits on.
#include <catch2/catch.hpp>

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <limits>

#include "devices/rate_limiter.hpp"

using vmm::RateLimiter;
using vmm::RateLimiterConfig;
using vmm::TokenBucket;
using vmm::TokenBucketConfig;

namespace {

constexpr uint64_t kMs = 1'000'000;  // ns

bool readable_within(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
}

}  // namespace

TEST_CASE("token bucket: starts full, refuses what it lacks, refills over refill_time",
          "[rate_limiter]") {
    TokenBucket bucket({1000, 0, 100}, 0);  // 1000 tokens per 100 ms
    CHECK(bucket.consume(600, 0));
    CHECK_FALSE(bucket.consume(500, 0));  // 400 left: refused, nothing taken
    CHECK(bucket.available(0) == 400);
    CHECK(bucket.wait_ns(500, 0) == 10 * kMs);  // 100 more tokens: 10 ms
    CHECK_FALSE(bucket.consume(500, 10 * kMs - 1));
    CHECK(bucket.consume(500, 10 * kMs));
    CHECK(bucket.available(10 * kMs) == 0);
    // Never above size, however long it waits.
    CHECK(bucket.available(10'000 * kMs) == 1000);
}

TEST_CASE("token bucket: refill keeps fractions of a token", "[rate_limiter]") {
    TokenBucket bucket({3, 0, 1000}, 0);  // one token per 333.33 ms
    REQUIRE(bucket.consume(3, 0));
    // 1000 steps of 1 ms add exactly the 3 tokens one step of 1 s would.
    for (uint64_t t = 1; t <= 1000; ++t) {
        bucket.available(t * kMs);
    }
    CHECK(bucket.available(1000 * kMs) == 3);
}

TEST_CASE("token bucket: the one-time burst is spent first and never refilled", "[rate_limiter]") {
    TokenBucket bucket({100, 50, 1000}, 0);
    CHECK(bucket.available(0) == 150);
    CHECK(bucket.consume(120, 0));  // 50 burst + 70 budget
    CHECK(bucket.available(0) == 30);
    CHECK(bucket.available(5000 * kMs) == 100);  // the burst is gone for good
}

TEST_CASE("token bucket: a request larger than the bucket waits for a full one and pays its debt",
          "[rate_limiter]") {
    TokenBucket bucket({100, 0, 100}, 0);  // 1 token per ms
    REQUIRE(bucket.consume(50, 0));
    CHECK_FALSE(bucket.consume(250, 0));
    CHECK(bucket.wait_ns(250, 0) == 50 * kMs);  // until full again
    CHECK(bucket.consume(250, 50 * kMs));       // 100 now, 150 owed
    CHECK(bucket.available(50 * kMs) == 0);
    CHECK_FALSE(bucket.consume(1, 199 * kMs));  // the debt is paid at 200 ms
    CHECK(bucket.wait_ns(1, 199 * kMs) == 2 * kMs);
    CHECK(bucket.consume(1, 201 * kMs));
}

TEST_CASE("token bucket: extreme sizes and refill times do not overflow", "[rate_limiter]") {
    constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
    TokenBucket huge({kMax, kMax, kMax}, 0);
    CHECK(huge.available(0) == kMax);
    CHECK(huge.consume(kMax, 0));
    CHECK(huge.consume(kMax, 0));
    CHECK(huge.wait_ns(kMax, 0) == kMax);
    CHECK(huge.available(kMax) > 0);
    TokenBucket tiny({1, 0, 1}, 0);
    CHECK(tiny.consume(kMax, 0));
    CHECK(tiny.wait_ns(1, 0) == kMax);
    CHECK_THROWS(TokenBucket({0, 10, 100}, 0));
}

TEST_CASE("rate limiter: zero-size or zero-time buckets do not limit", "[rate_limiter]") {
    RateLimiter limiter(RateLimiterConfig{{0, 0, 100}, {100, 0, 0}});
    CHECK_FALSE(limiter.limits());
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(limiter.consume(1, 1 << 20));
    }
    CHECK(limiter.throttled() == 0);
}

TEST_CASE("rate limiter: a refusal arms the timer for when both buckets have enough",
          "[rate_limiter]") {
    // 2 ops per 40 ms, 1 MB per second.
    RateLimiter limiter(RateLimiterConfig{{1'000'000, 0, 1000}, {2, 0, 40}});
    REQUIRE(limiter.consume(1, 1000));
    REQUIRE(limiter.consume(1, 1000));
    auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(limiter.consume(1, 1000));  // no op left
    CHECK(limiter.blocked());
    CHECK(limiter.throttled() == 1);
    CHECK_FALSE(limiter.consume(1, 0));  // still waiting: refused at once, counted once
    CHECK(limiter.throttled() == 1);
    CHECK_FALSE(readable_within(limiter.timer_fd(), 5));
    REQUIRE(readable_within(limiter.timer_fd(), 1000));
    auto waited = std::chrono::steady_clock::now() - start;
    CHECK(waited >= std::chrono::milliseconds(19));  // one op refills in 20 ms
    CHECK(limiter.timer_expired());
    CHECK_FALSE(limiter.blocked());
    CHECK(limiter.consume(1, 1000));
    CHECK_FALSE(limiter.timer_expired());  // nothing was waiting
}

TEST_CASE("rate limiter: an update replaces the buckets given and wakes a waiting device",
          "[rate_limiter]") {
    RateLimiter limiter(RateLimiterConfig{{100, 0, 1'000'000}, {}});
    REQUIRE(limiter.consume(1, 100));
    REQUIRE_FALSE(limiter.consume(1, 100));  // the next 100 bytes take 1000 s
    // Only the ops bucket changes: bandwidth keeps its (empty) state.
    limiter.update({std::nullopt, TokenBucketConfig{10, 0, 100}});
    REQUIRE(readable_within(limiter.timer_fd(), 1000));
    REQUIRE(limiter.timer_expired());
    CHECK_FALSE(limiter.consume(1, 100));
    CHECK(limiter.config().ops == TokenBucketConfig{10, 0, 100});
    CHECK(limiter.config().bandwidth == TokenBucketConfig{100, 0, 1'000'000});
    // A non-limiting bucket removes the limit.
    limiter.update({TokenBucketConfig{0, 0, 0}, std::nullopt});
    REQUIRE(readable_within(limiter.timer_fd(), 1000));
    REQUIRE(limiter.timer_expired());
    CHECK(limiter.consume(1, 1 << 30));
    CHECK(limiter.config().bandwidth == TokenBucketConfig{});
}
