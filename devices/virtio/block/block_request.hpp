// A virtio-blk request parsed out of a validated descriptor chain (VIRTIO
// 1.2, 5.2.6): header, data as checked guest slices, and where the status
// byte goes. Parsing never throws for a malformed request: it yields a
// request whose status is already decided (IOERR / UNSUPP).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "devices/virtio/descriptor_chain.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace vmm {

inline constexpr uint32_t kBlkTypeIn = 0;
inline constexpr uint32_t kBlkTypeOut = 1;
inline constexpr uint32_t kBlkTypeFlush = 4;
inline constexpr uint32_t kBlkTypeGetId = 8;
inline constexpr uint32_t kBlkTypeDiscard = 11;
inline constexpr uint32_t kBlkTypeWriteZeroes = 13;

inline constexpr uint8_t kBlkStatusOk = 0;
inline constexpr uint8_t kBlkStatusIoErr = 1;
inline constexpr uint8_t kBlkStatusUnsupported = 2;

inline constexpr uint32_t kBlkIdBytes = 20;
// Advertised seg_max: data buffers per read or write. Linux sizes its
// requests by it; more (up to a queue's worth) is answered IOERR.
inline constexpr uint32_t kBlkSegMax = 126;
inline constexpr uint32_t kMaxDiscardSegments = 1;  // advertised max_discard_seg

struct BlkDiscardSegment {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;  // bit 0: unmap (write zeroes only)
};

struct BlockRequest {
    uint32_t type = 0;
    uint64_t sector = 0;
    // IN / GET_ID: device-writable; OUT: device-readable. Excludes the status byte.
    std::vector<GuestSlice> data;
    uint64_t data_length = 0;
    std::vector<BlkDiscardSegment> segments;     // DISCARD / WRITE_ZEROES
    std::optional<GuestAddress> status_address;  // nothing when the chain has no room
    // Set when parsing already decided the outcome.
    std::optional<uint8_t> early_status;
};

// `capacity_sectors` bounds every data range; `read_only` refuses writes; a
// read or write in more than kBlkSegMax buffers is IOERR.
BlockRequest parse_block_request(const GuestMemory& memory, const DescriptorChain& chain,
                                 uint64_t capacity_sectors, bool read_only);

}  // namespace vmm
