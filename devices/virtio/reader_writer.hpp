// Sequential cursors over a validated descriptor chain, so that devices parse
// requests as byte streams instead of buffer lists: ChainReader walks the
// device-readable buffers, ChainWriter the device-writable ones. Both copy
// through GuestMemory's checked accessors, or hand out checked GuestSlices for
// zero-copy I/O (iovecs for preadv/pwritev). Running out of bytes in
// read_obj/write_obj/skip throws QueueError: the request was too short.
// A cursor splits in two at a byte offset (split_at), so that a header and
// the data behind it are handled by two independent cursors, each bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "devices/virtio/descriptor_chain.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace vmm {

namespace detail {

// A front-to-back cursor over a list of non-empty guest buffers.
class BufferCursor {
  public:
    struct Piece {
        GuestAddress address;
        uint64_t length;  // 0 once the buffers are used up
    };

    BufferCursor(const GuestMemory& memory, std::vector<DescriptorBuffer> buffers);

    const GuestMemory& memory() const { return *memory_; }
    uint64_t remaining() const { return remaining_; }
    uint64_t consumed() const { return consumed_; }
    // Consumes and returns the next contiguous piece of at most `max_bytes`.
    Piece take(uint64_t max_bytes);
    // Consumes up to `max_bytes` as checked slices.
    std::vector<GuestSlice> slices(uint64_t max_bytes);
    // Keeps the next `offset` bytes and returns a cursor over the rest (an
    // empty one when no more than `offset` are left), which counts its own
    // consumed bytes from 0.
    BufferCursor split_at(uint64_t offset);

  private:
    const GuestMemory* memory_;
    std::vector<DescriptorBuffer> buffers_;
    size_t index_ = 0;     // current buffer
    uint64_t offset_ = 0;  // into the current buffer
    uint64_t remaining_ = 0;
    uint64_t consumed_ = 0;
};

// Throws the QueueError for a request `needed` bytes too long for `kind`.
[[noreturn]] void throw_short_chain(uint16_t head, const char* kind, uint64_t needed,
                                    uint64_t remaining);

}  // namespace detail

class ChainReader {
  public:
    // The chain's buffers are copied: the reader does not refer to `chain`.
    ChainReader(const GuestMemory& memory, const DescriptorChain& chain);

    // Copies up to out.size() bytes; returns how many (fewer only at the end).
    size_t read(std::span<uint8_t> out);
    // Reads one T, throwing QueueError if fewer than sizeof(T) bytes are left.
    template <typename T>
    T read_obj() {
        static_assert(std::is_trivially_copyable_v<T>);
        if (remaining() < sizeof(T)) {
            detail::throw_short_chain(head_, "readable", sizeof(T), remaining());
        }
        T value;
        read(std::span(reinterpret_cast<uint8_t*>(&value), sizeof(T)));
        return value;
    }
    // Skips `count` bytes, throwing QueueError if fewer are left.
    void skip(uint64_t count);
    // Consumes up to `max_bytes` as checked slices of guest RAM.
    std::vector<GuestSlice> slices(uint64_t max_bytes);

    uint64_t remaining() const { return cursor_.remaining(); }
    uint64_t bytes_read() const { return cursor_.consumed(); }

    // Splits the bytes left at `offset`: this reader keeps the first
    // `offset` of them, the reader returned gets the rest (none when no more
    // than `offset` are left). The two are independent: reading one does not
    // move the other, and each counts its own bytes_read().
    ChainReader split_at(uint64_t offset);

  private:
    ChainReader(uint16_t head, detail::BufferCursor cursor)
        : head_(head), cursor_(std::move(cursor)) {}

    uint16_t head_;
    detail::BufferCursor cursor_;
};

class ChainWriter {
  public:
    // The chain's buffers are copied: the writer does not refer to `chain`.
    ChainWriter(const GuestMemory& memory, const DescriptorChain& chain);

    // Copies up to in.size() bytes; returns how many (fewer only at the end).
    size_t write(std::span<const uint8_t> in);
    // Writes one T, throwing QueueError (writing nothing) if it does not fit.
    template <typename T>
    void write_obj(const T& value) {
        static_assert(std::is_trivially_copyable_v<T>);
        if (remaining() < sizeof(T)) {
            detail::throw_short_chain(head_, "writable", sizeof(T), remaining());
        }
        write(std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
    }
    // Consumes up to `max_bytes` as checked slices of guest RAM; they count
    // as written (the caller fills them, e.g. with preadv).
    std::vector<GuestSlice> slices(uint64_t max_bytes);

    uint64_t remaining() const { return cursor_.remaining(); }
    // What to report as the used length in add_used().
    uint64_t bytes_written() const { return cursor_.consumed(); }

    // Splits the room left at `offset`: this writer keeps the first `offset`
    // bytes of it, the writer returned gets the rest (none when no more than
    // `offset` are left). The two are independent, and each counts its own
    // bytes_written(): the used length of the chain is their sum.
    ChainWriter split_at(uint64_t offset);

  private:
    ChainWriter(uint16_t head, detail::BufferCursor cursor)
        : head_(head), cursor_(std::move(cursor)) {}

    uint16_t head_;
    detail::BufferCursor cursor_;
};

}  // namespace vmm
