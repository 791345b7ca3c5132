// A guest-physical address: a distinct type so that host pointers, offsets and
// guest addresses cannot be mixed up, with overflow-checked arithmetic.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>

namespace vmm {

class GuestAddress {
  public:
    constexpr GuestAddress() = default;
    constexpr explicit GuestAddress(uint64_t value) : value_(value) {}

    constexpr uint64_t value() const { return value_; }

    // addr + offset, or nothing if it wraps past 2^64.
    constexpr std::optional<GuestAddress> checked_add(uint64_t offset) const {
        uint64_t sum = 0;
        if (__builtin_add_overflow(value_, offset, &sum)) {
            return std::nullopt;
        }
        return GuestAddress(sum);
    }
    // Unchecked; only for constants known not to overflow.
    constexpr GuestAddress operator+(uint64_t offset) const {
        return GuestAddress(value_ + offset);
    }

    constexpr auto operator<=>(const GuestAddress&) const = default;

  private:
    uint64_t value_ = 0;
};

}  // namespace vmm
