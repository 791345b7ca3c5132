#include "devices/virtio/block/block_request.hpp"

#include <cstring>

#include "devices/virtio/block/disk_image.hpp"

namespace vmm {

namespace {

struct BlkHeader {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};
static_assert(sizeof(BlkHeader) == 16);
static_assert(sizeof(BlkDiscardSegment) == 16);

// The bytes [skip, skip + length) of a run of buffers, as checked slices.
std::vector<GuestSlice> gather(const GuestMemory& memory,
                               const std::vector<DescriptorBuffer>& buffers, uint64_t skip,
                               uint64_t length) {
    std::vector<GuestSlice> slices;
    for (const auto& buffer : buffers) {
        if (length == 0) {
            break;
        }
        if (skip >= buffer.length) {
            skip -= buffer.length;
            continue;
        }
        uint64_t take = std::min<uint64_t>(buffer.length - skip, length);
        slices.push_back(memory.slice(GuestAddress(buffer.address.value() + skip), take));
        length -= take;
        skip = 0;
    }
    return slices;
}

// Copies `out.size()` bytes starting `skip` bytes into the buffers.
void copy_out(const GuestMemory& memory, const std::vector<DescriptorBuffer>& buffers,
              uint64_t skip, std::span<uint8_t> out) {
    size_t done = 0;
    for (const GuestSlice& slice : gather(memory, buffers, skip, out.size())) {
        // SAFETY: a checked slice of guest RAM; the guest may change it
        // concurrently, which only changes what it asked for.
        std::memcpy(out.data() + done, slice.data(), slice.size());
        done += slice.size();
    }
}

uint64_t total(const std::vector<DescriptorBuffer>& buffers) {
    uint64_t sum = 0;
    for (const auto& buffer : buffers) {
        sum += buffer.length;
    }
    return sum;
}

// sector + count within capacity, without overflow.
bool in_range(uint64_t sector, uint64_t count, uint64_t capacity) {
    return sector <= capacity && count <= capacity - sector;
}

}  // namespace

BlockRequest parse_block_request(const GuestMemory& memory, const DescriptorChain& chain,
                                 uint64_t capacity_sectors, bool read_only) {
    std::vector<DescriptorBuffer> readable, writable;
    for (const auto& buffer : chain.buffers()) {
        (buffer.writable ? writable : readable).push_back(buffer);
    }
    BlockRequest request;
    uint64_t writable_bytes = total(writable);
    if (writable_bytes == 0) {
        // Nowhere to put a status: the request can only be dropped.
        request.early_status = kBlkStatusIoErr;
        return request;
    }
    for (auto it = writable.rbegin(); it != writable.rend(); ++it) {
        if (it->length > 0) {
            request.status_address = GuestAddress(it->address.value() + it->length - 1);
            break;
        }
    }
    uint64_t readable_bytes = total(readable);
    if (readable_bytes < sizeof(BlkHeader)) {
        request.early_status = kBlkStatusIoErr;
        return request;
    }
    BlkHeader header;
    copy_out(memory, readable, 0, std::span(reinterpret_cast<uint8_t*>(&header), sizeof(header)));
    request.type = header.type;
    request.sector = header.sector;
    uint64_t in_bytes = writable_bytes - 1;  // all writable bytes but the status
    uint64_t out_bytes = readable_bytes - sizeof(BlkHeader);

    switch (header.type) {
        case kBlkTypeIn:
        case kBlkTypeOut: {
            bool is_write = header.type == kBlkTypeOut;
            uint64_t length = is_write ? out_bytes : in_bytes;
            if (is_write && read_only) {
                request.early_status = kBlkStatusIoErr;
                return request;
            }
            if (length % kSectorSize != 0 ||
                !in_range(header.sector, length / kSectorSize, capacity_sectors)) {
                request.early_status = kBlkStatusIoErr;
                return request;
            }
            request.data = is_write ? gather(memory, readable, sizeof(BlkHeader), length)
                                    : gather(memory, writable, 0, length);
            if (request.data.size() > kBlkSegMax) {
                // What the device said it takes: refused, not half done.
                request.data.clear();
                request.early_status = kBlkStatusIoErr;
                return request;
            }
            request.data_length = length;
            return request;
        }
        case kBlkTypeFlush:
            return request;
        case kBlkTypeGetId:
            request.data_length = std::min<uint64_t>(in_bytes, kBlkIdBytes);
            request.data = gather(memory, writable, 0, request.data_length);
            return request;
        case kBlkTypeDiscard:
        case kBlkTypeWriteZeroes: {
            if (read_only) {
                request.early_status = kBlkStatusIoErr;
                return request;
            }
            if (out_bytes == 0 || out_bytes % sizeof(BlkDiscardSegment) != 0 ||
                out_bytes / sizeof(BlkDiscardSegment) > kMaxDiscardSegments) {
                request.early_status = kBlkStatusUnsupported;
                return request;
            }
            uint32_t allowed_flags = header.type == kBlkTypeWriteZeroes ? 1u : 0u;
            for (uint64_t i = 0; i < out_bytes / sizeof(BlkDiscardSegment); ++i) {
                BlkDiscardSegment segment;
                copy_out(memory, readable, sizeof(BlkHeader) + i * sizeof(segment),
                         std::span(reinterpret_cast<uint8_t*>(&segment), sizeof(segment)));
                if (segment.flags & ~allowed_flags) {
                    request.early_status = kBlkStatusUnsupported;
                    return request;
                }
                if (!in_range(segment.sector, segment.num_sectors, capacity_sectors)) {
                    request.early_status = kBlkStatusIoErr;
                    return request;
                }
                request.segments.push_back(segment);
            }
            return request;
        }
        default:
            request.early_status = kBlkStatusUnsupported;
            return request;
    }
}

}  // namespace vmm
