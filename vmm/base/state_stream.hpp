// The byte format of saved VM state (snapshots): a StateWriter appends
// fixed-width little-endian integers, length-prefixed byte strings and
// nested sections; a StateReader takes them back out, checking every length
// against what is left, so a truncated or corrupt state is refused with an
// Error naming what was being read, never read past its end. Every part of
// the VMM that saves state (vCPUs, in-kernel devices, each device) writes
// itself with these and reads itself back in the same order.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "vmm/base/error.hpp"

namespace vmm {

static_assert(std::endian::native == std::endian::little,
              "saved state is little-endian: a big-endian port needs byte swaps here");

// What a StateReader throws: the state is truncated, corrupt or not ours.
class StateError : public Error {
  public:
    using Error::Error;
};

class StateWriter {
  public:
    void u8(uint8_t value) { raw(&value, 1); }
    void u16(uint16_t value) { raw(&value, 2); }
    void u32(uint32_t value) { raw(&value, 4); }
    void u64(uint64_t value) { raw(&value, 8); }
    void boolean(bool value) { u8(value ? 1 : 0); }
    // A u32 length, then the bytes.
    void bytes(std::span<const uint8_t> data);
    void string(std::string_view text);
    // A trivially copyable struct as its bytes (a KVM ABI struct: its layout
    // is fixed by the kernel's ABI), preceded by its size so that a reader
    // built against another layout refuses it instead of misreading it.
    template <typename T>
    void pod(const T& value) {
        static_assert(std::is_trivially_copyable_v<T>);
        u32(uint32_t(sizeof(T)));
        raw(&value, sizeof(T));
    }
    // A nested section: `section.data()` as bytes(), read back whole with
    // StateReader::section(), so a part's reader cannot run into the next.
    void section(const StateWriter& section) { bytes(section.data()); }

    const std::vector<uint8_t>& data() const { return data_; }
    std::vector<uint8_t> take() { return std::move(data_); }

  private:
    void raw(const void* data, size_t size);

    std::vector<uint8_t> data_;
};

class StateReader {
  public:
    // `what` names the state in errors ("vCPU 0", "virtio-blk rootfs").
    StateReader(std::span<const uint8_t> data, std::string what)
        : data_(data), what_(std::move(what)) {}

    uint8_t u8() { return fixed<uint8_t>(); }
    uint16_t u16() { return fixed<uint16_t>(); }
    uint32_t u32() { return fixed<uint32_t>(); }
    uint64_t u64() { return fixed<uint64_t>(); }
    // Only 0 or 1: anything else is corruption.
    bool boolean();
    // At most `max` bytes; more is refused (a corrupt length must not make
    // us allocate gigabytes).
    std::vector<uint8_t> bytes(size_t max);
    std::string string(size_t max);
    template <typename T>
    T pod() {
        static_assert(std::is_trivially_copyable_v<T>);
        uint32_t size = u32();
        if (size != sizeof(T)) {
            fail(fmt::format("a {}-byte structure where {} bytes were expected", size, sizeof(T)));
        }
        T value;
        std::memcpy(&value, take(sizeof(T)).data(), sizeof(T));
        return value;
    }
    // The next nested section, as its own reader named `what`.
    StateReader section(std::string what);

    size_t remaining() const { return data_.size() - offset_; }
    // Throws unless everything was read: leftover bytes mean the writer and
    // the reader disagree about the format.
    void expect_end() const;
    // Throws StateError "<what>: <problem>".
    [[noreturn]] void fail(const std::string& problem) const;
    const std::string& what() const { return what_; }

  private:
    template <typename T>
    T fixed() {
        T value;
        std::memcpy(&value, take(sizeof(T)).data(), sizeof(T));
        return value;
    }
    std::span<const uint8_t> take(size_t size);

    std::span<const uint8_t> data_;
    size_t offset_ = 0;
    std::string what_;
};

}  // namespace vmm
