// Constants and ring layouts from the VIRTIO 1.2 specification that the
// transport, the queues and the devices share. Names follow the spec (and so
// clash with the macros of <linux/virtio_*.h>: do not include those here).
#pragma once

#include <bit>
#include <cstdint>

namespace vmm {

// Ring fields are little-endian; so is every host this VMM runs on, which lets
// the structs below be copied to and from guest memory as they are.
static_assert(std::endian::native == std::endian::little);

// Feature bit numbers (2.2, 6).
inline constexpr unsigned VIRTIO_F_RING_INDIRECT_DESC = 28;
inline constexpr unsigned VIRTIO_F_RING_EVENT_IDX = 29;
inline constexpr unsigned VIRTIO_F_VERSION_1 = 32;

// Device status bits (2.1).
inline constexpr uint32_t VIRTIO_STATUS_ACKNOWLEDGE = 1;
inline constexpr uint32_t VIRTIO_STATUS_DRIVER = 2;
inline constexpr uint32_t VIRTIO_STATUS_DRIVER_OK = 4;
inline constexpr uint32_t VIRTIO_STATUS_FEATURES_OK = 8;
inline constexpr uint32_t VIRTIO_STATUS_DEVICE_NEEDS_RESET = 64;
inline constexpr uint32_t VIRTIO_STATUS_FAILED = 128;

// Descriptor flags (2.7.5).
inline constexpr uint16_t VIRTQ_DESC_F_NEXT = 1;
inline constexpr uint16_t VIRTQ_DESC_F_WRITE = 2;
inline constexpr uint16_t VIRTQ_DESC_F_INDIRECT = 4;

// Available ring flags (2.7.6) and used ring flags (2.7.8).
inline constexpr uint16_t VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
inline constexpr uint16_t VIRTQ_USED_F_NO_NOTIFY = 1;

// The largest queue size a split virtqueue can have (2.7).
inline constexpr uint32_t kVirtqMaxSize = 32768;

// One entry of a descriptor table, direct or indirect (2.7.5).
struct VirtqDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
static_assert(sizeof(VirtqDesc) == 16);

// One entry of the used ring (2.7.8).
struct VirtqUsedElem {
    uint32_t id;
    uint32_t len;
};
static_assert(sizeof(VirtqUsedElem) == 8);

// Byte offsets inside the driver area (available ring, 2.7.6):
//   le16 flags; le16 idx; le16 ring[size]; le16 used_event;
inline constexpr uint64_t kAvailFlagsOffset = 0;
inline constexpr uint64_t kAvailIdxOffset = 2;
inline constexpr uint64_t kAvailRingOffset = 4;
inline constexpr uint64_t avail_ring_bytes(uint64_t size) {
    return 6 + 2 * size;
}
inline constexpr uint64_t used_event_offset(uint64_t size) {
    return 4 + 2 * size;
}

// Byte offsets inside the device area (used ring, 2.7.8):
//   le16 flags; le16 idx; VirtqUsedElem ring[size]; le16 avail_event;
inline constexpr uint64_t kUsedFlagsOffset = 0;
inline constexpr uint64_t kUsedIdxOffset = 2;
inline constexpr uint64_t kUsedRingOffset = 4;
inline constexpr uint64_t used_ring_bytes(uint64_t size) {
    return 6 + 8 * size;
}
inline constexpr uint64_t avail_event_offset(uint64_t size) {
    return 4 + 8 * size;
}

// The descriptor table (2.7.5) and the alignment of each area (2.7.2).
inline constexpr uint64_t desc_table_bytes(uint64_t size) {
    return 16 * size;
}
inline constexpr uint64_t kDescTableAlign = 16;
inline constexpr uint64_t kAvailRingAlign = 2;
inline constexpr uint64_t kUsedRingAlign = 4;

// vring_need_event (2.7.10): true when the other side asked to be told once
// the index moves past `event`, and it moved from `old_idx` to `new_idx`.
// 16-bit arithmetic, so it holds across wrap-around.
inline constexpr bool vring_need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
    return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

}  // namespace vmm
