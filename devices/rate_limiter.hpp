// Token-bucket rate limiting of a device's I/O, with Firecracker's
// RateLimiter semantics (firecracker-api.yaml, TokenBucket): each bucket
// holds `size` tokens, refills from empty to full in `refill_time` ms, and
// starts with an extra `one_time_burst` that is spent first and never
// refilled. A limiter has a bandwidth bucket (bytes) and an ops bucket
// (requests); a zero size or refill time means that bucket does not limit.
// A device that is refused waits on the limiter's timerfd, armed for the
// moment the buckets will hold enough: throttled queues resume from the
// event loop, never by polling.
#pragma once

#include <cstdint>
#include <optional>

#include "vmm/base/unique_fd.hpp"

namespace vmm {

struct TokenBucketConfig {
    uint64_t size = 0;
    uint64_t one_time_burst = 0;
    uint64_t refill_time_ms = 0;

    bool limits() const { return size > 0 && refill_time_ms > 0; }
    bool operator==(const TokenBucketConfig&) const = default;
};

struct RateLimiterConfig {
    TokenBucketConfig bandwidth;
    TokenBucketConfig ops;

    bool limits() const { return bandwidth.limits() || ops.limits(); }
    bool operator==(const RateLimiterConfig&) const = default;
};

// A PATCH: each bucket given replaces the current one (a non-limiting one
// removes it); one not given stays as it is, tokens included.
struct RateLimiterUpdate {
    std::optional<TokenBucketConfig> bandwidth;
    std::optional<TokenBucketConfig> ops;
};

// One bucket, on a caller-supplied clock (nanoseconds, monotonic).
class TokenBucket {
  public:
    // Full, with the whole burst; `config` must limit (size and refill > 0).
    TokenBucket(const TokenBucketConfig& config, uint64_t now_ns);

    // Takes `tokens` (the burst first) when there are enough, and returns
    // true; takes nothing and returns false otherwise. A request larger than
    // the bucket could ever hold goes through once the bucket is full,
    // leaving a debt that later refills pay first: it costs its full time.
    bool consume(uint64_t tokens, uint64_t now_ns);
    // Nanoseconds from `now_ns` until consume(tokens) would succeed (0: now).
    uint64_t wait_ns(uint64_t tokens, uint64_t now_ns);
    // Tokens available now (burst included, debt subtracted; 0 when in debt).
    uint64_t available(uint64_t now_ns);

    const TokenBucketConfig& config() const { return config_; }

  private:
    void refill(uint64_t now_ns);
    // Nanoseconds of refilling that add `tokens` to the bucket.
    uint64_t time_for(uint64_t tokens) const;

    TokenBucketConfig config_;
    uint64_t refill_ns_;  // from empty to full
    uint64_t budget_;     // refillable tokens, at most size
    uint64_t burst_;      // what is left of one_time_burst
    uint64_t debt_ = 0;   // an oversized request's tokens beyond the bucket
    // Refill time accrued but not yet a whole token, in units of
    // 1/refill_ns_ token (so always below refill_ns_ / size tokens' worth).
    unsigned __int128 fraction_ = 0;
    uint64_t last_ns_;
};

class RateLimiter {
  public:
    // Creates the timerfd (so that a later update() needs no new fd).
    explicit RateLimiter(const RateLimiterConfig& config = {});

    // Takes `ops` from the ops bucket and `bytes` from the bandwidth bucket
    // when both have them now (or do not limit) and returns true. Otherwise
    // takes nothing, arms the timer for when both will and returns false;
    // while that timer is armed every consume() is refused at once.
    bool consume(uint64_t ops, uint64_t bytes);
    // Whether a refused consume() waits for the timer.
    bool blocked() const { return blocked_; }
    // Readable when the wait is over; the device then calls timer_expired()
    // and tries again.
    int timer_fd() const { return timer_.get(); }
    // Reads the timerfd; returns whether the limiter was blocked (so a
    // spurious wake-up can be ignored). Afterwards it is not blocked.
    bool timer_expired();

    void update(const RateLimiterUpdate& update);
    RateLimiterConfig config() const;
    bool limits() const { return bandwidth_ || ops_; }
    // How many times a consume() was refused into a wait (not counting the
    // refusals while already waiting).
    uint64_t throttled() const { return throttled_; }

  private:
    static uint64_t now_ns();
    void arm(uint64_t wait_ns);

    UniqueFd timer_;
    std::optional<TokenBucket> bandwidth_;
    std::optional<TokenBucket> ops_;
    bool blocked_ = false;
    uint64_t throttled_ = 0;
};

}  // namespace vmm
