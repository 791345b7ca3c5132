#include "devices/rate_limiter.hpp"

#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <limits>

#include "vmm/base/error.hpp"

namespace vmm {

namespace {

using u128 = unsigned __int128;
constexpr uint64_t kNsPerMs = 1'000'000;
constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
// Longer waits are armed as this (146 years): timespec arithmetic stays exact.
constexpr uint64_t kLongestWaitNs = uint64_t(1) << 62;

uint64_t saturating_add(uint64_t a, uint64_t b) {
    return a > kMax - b ? kMax : a + b;
}

}  // namespace

TokenBucket::TokenBucket(const TokenBucketConfig& config, uint64_t now_ns)
    : config_(config),
      refill_ns_(config.refill_time_ms > kMax / kNsPerMs ? kMax : config.refill_time_ms * kNsPerMs),
      budget_(config.size),
      burst_(config.one_time_burst),
      last_ns_(now_ns) {
    if (!config.limits()) {
        throw Error("a token bucket needs a size and a refill time above 0");
    }
}

void TokenBucket::refill(uint64_t now_ns) {
    if (now_ns <= last_ns_) {
        return;
    }
    uint64_t elapsed = now_ns - last_ns_;
    last_ns_ = now_ns;
    if (debt_ == 0 && budget_ == config_.size) {
        fraction_ = 0;
        return;
    }
    // (2^64-1)^2 plus a fraction below 2^64 still fits in 128 bits.
    u128 total = u128(elapsed) * config_.size + fraction_;
    u128 tokens = total / refill_ns_;
    fraction_ = total % refill_ns_;
    if (tokens <= debt_) {
        debt_ -= uint64_t(tokens);
        return;
    }
    tokens -= debt_;
    debt_ = 0;
    if (tokens >= config_.size - budget_) {
        budget_ = config_.size;
        fraction_ = 0;
    } else {
        budget_ += uint64_t(tokens);
    }
}

uint64_t TokenBucket::time_for(uint64_t tokens) const {
    if (tokens == 0) {
        return 0;
    }
    if (refill_ns_ > std::numeric_limits<u128>::max() / tokens) {
        return kMax;
    }
    u128 needed = u128(tokens) * refill_ns_;
    if (needed <= fraction_) {
        return 0;
    }
    u128 ns = (needed - fraction_ + config_.size - 1) / config_.size;
    return ns > kMax ? kMax : uint64_t(ns);
}

bool TokenBucket::consume(uint64_t tokens, uint64_t now_ns) {
    refill(now_ns);
    if (debt_ > 0) {
        return false;
    }
    if (tokens <= burst_) {
        burst_ -= tokens;
        return true;
    }
    uint64_t rest = tokens - burst_;
    if (rest <= budget_) {
        burst_ = 0;
        budget_ -= rest;
        return true;
    }
    if (rest > config_.size && budget_ == config_.size) {
        burst_ = 0;
        budget_ = 0;
        debt_ = rest - config_.size;
        return true;
    }
    return false;
}

uint64_t TokenBucket::wait_ns(uint64_t tokens, uint64_t now_ns) {
    refill(now_ns);
    uint64_t rest = tokens > burst_ ? tokens - burst_ : 0;
    bool oversized = rest > config_.size;
    if (debt_ == 0 && (rest <= budget_ || (oversized && budget_ == config_.size))) {
        return 0;
    }
    // An oversized request waits for a full bucket; others for their tokens.
    uint64_t target = std::min(rest, config_.size);
    uint64_t missing = target > budget_ ? target - budget_ : 0;
    return time_for(saturating_add(debt_, std::max<uint64_t>(missing, 1)));
}

uint64_t TokenBucket::available(uint64_t now_ns) {
    refill(now_ns);
    return debt_ > 0 ? 0 : saturating_add(burst_, budget_);
}

RateLimiter::RateLimiter(const RateLimiterConfig& config)
    : timer_(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) {
    if (!timer_.valid()) {
        throw_errno("timerfd_create for a rate limiter");
    }
    update({config.bandwidth, config.ops});
}

uint64_t RateLimiter::now_ns() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return uint64_t(now.tv_sec) * 1'000'000'000 + uint64_t(now.tv_nsec);
}

void RateLimiter::arm(uint64_t wait_ns) {
    wait_ns = std::clamp<uint64_t>(wait_ns, 1, kLongestWaitNs);
    itimerspec spec{};
    spec.it_value.tv_sec = time_t(wait_ns / 1'000'000'000);
    spec.it_value.tv_nsec = long(wait_ns % 1'000'000'000);
    if (::timerfd_settime(timer_.get(), 0, &spec, nullptr) != 0) {
        throw_errno("timerfd_settime for a rate limiter");
    }
}

bool RateLimiter::consume(uint64_t ops, uint64_t bytes) {
    if (blocked_) {
        return false;
    }
    uint64_t now = now_ns();
    uint64_t wait = 0;
    if (ops_ && ops > 0) {
        wait = ops_->wait_ns(ops, now);
    }
    if (bandwidth_ && bytes > 0) {
        wait = std::max(wait, bandwidth_->wait_ns(bytes, now));
    }
    if (wait > 0) {
        arm(wait);
        blocked_ = true;
        ++throttled_;
        return false;
    }
    // Both said yes at `now`, so both take their tokens.
    if (ops_ && ops > 0) {
        ops_->consume(ops, now);
    }
    if (bandwidth_ && bytes > 0) {
        bandwidth_->consume(bytes, now);
    }
    return true;
}

bool RateLimiter::timer_expired() {
    uint64_t expirations = 0;
    [[maybe_unused]] ssize_t n = ::read(timer_.get(), &expirations, sizeof(expirations));
    return std::exchange(blocked_, false);
}

void RateLimiter::update(const RateLimiterUpdate& update) {
    uint64_t now = now_ns();
    auto apply = [now](std::optional<TokenBucket>& bucket,
                       const std::optional<TokenBucketConfig>& config) {
        if (!config) {
            return;
        }
        if (config->limits()) {
            bucket.emplace(*config, now);
        } else {
            bucket.reset();
        }
    };
    apply(bandwidth_, update.bandwidth);
    apply(ops_, update.ops);
    if (blocked_) {
        // The wait was for the old buckets: wake the device now to try
        // again against the new ones.
        arm(1);
    }
}

RateLimiterConfig RateLimiter::config() const {
    RateLimiterConfig config;
    if (bandwidth_) {
        config.bandwidth = bandwidth_->config();
    }
    if (ops_) {
        config.ops = ops_->config();
    }
    return config;
}

}  // namespace vmm
