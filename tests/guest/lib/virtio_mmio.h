/*
 * Minimal polled virtio-mmio (version 2) driver for the test guests, plus
 * virtio-blk request helpers.  VIRTIO 1.2: 4.2.2 (MMIO registers), 2.7
 * (split virtqueues), 3.1.1 (driver initialisation), 5.2 (block device).
 *
 * Two queue APIs:
 *  - the single-queue one (virtio_init / vq_* / blk_*): queue 0 of one
 *    device, rings in this library's .bss, requests synchronous (submit,
 *    notify, poll the used ring with a bounded loop);
 *  - the multi-queue one (struct vqueue / virtio_setup_queue_n /
 *    vqueue_*): any number of queues of one device, each struct vqueue
 *    (static storage of the caller) holding its own rings, a free list of
 *    descriptors and per-head bookkeeping, so several chains can be in
 *    flight and completions can come back in any order.
 * Interrupts are never enabled: InterruptStatus is acknowledged after each
 * completion.  Guest-virtual == guest-physical, so pointers are used as DMA
 * addresses.
 */
#ifndef TEST_GUEST_VIRTIO_MMIO_H
#define TEST_GUEST_VIRTIO_MMIO_H

#include "runtime.h"

/* ---- MMIO registers (all 32-bit) ---- */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTIO_MMIO_MAGIC 0x74726976 /* "virt" */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

/* ---- device status bits ---- */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/* ---- feature bits ---- */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_GEOMETRY 4
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define FEAT(bit) (1UL << (bit))

/* ---- split virtqueue ---- */
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4

#define VQ_SIZE 16 /* queue size we use (power of two, <= QueueNumMax) */

struct vring_desc {
    u64 addr;
    u32 len;
    u16 flags;
    u16 next;
};
struct vring_avail {
    u16 flags;
    u16 idx;
    u16 ring[VQ_SIZE];
    u16 used_event;
};
struct vring_used_elem {
    u32 id;
    u32 len;
};
struct vring_used {
    u16 flags;
    u16 idx;
    struct vring_used_elem ring[VQ_SIZE];
    u16 avail_event;
};

/* ---- virtio-blk ---- */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20
#define SECTOR_SIZE 512
/* config space offsets (relative to VIRTIO_MMIO_CONFIG) */
#define VIRTIO_BLK_CFG_CAPACITY 0x00 /* le64 */
#define VIRTIO_BLK_CFG_SIZE_MAX 0x08 /* le32 */
#define VIRTIO_BLK_CFG_SEG_MAX 0x0c  /* le32 */
#define VIRTIO_BLK_CFG_BLK_SIZE 0x14 /* le32 */

struct virtio_blk_req_hdr {
    u32 type;
    u32 reserved;
    u64 sector;
};

/* ---- one transport from the cmdline ---- */
struct virtio_mmio_slot {
    u64 size;
    u64 base;
    u32 irq;
};
#define VIRTIO_MMIO_MAX_SLOTS 16

/* Parses every "virtio_mmio.device=<size>@<base>:<irq>[:<id>]" token of the
 * cmdline (size with optional K/M/G suffix; numbers as in Linux: 0x hex,
 * leading 0 octal, else decimal).  Returns the number stored in out[]. */
int virtio_mmio_parse_cmdline(struct virtio_mmio_slot *out, int max);

struct vdev {
    u64 base, size;
    u32 irq;
    u32 device_id, version, vendor_id;
    u64 dev_features; /* offered */
    u64 drv_features; /* accepted */
    u32 qmax;         /* QueueNumMax of queue 0 */
    u16 qnum;         /* queue size in use */
    u16 avail_idx;    /* next avail->idx the driver publishes */
    u16 used_idx;     /* last used->idx consumed */
    u16 next_desc;    /* first descriptor of the next chain */
    volatile struct vring_desc *desc;
    volatile struct vring_avail *avail;
    volatile struct vring_used *used;
};

/* Poll bound for completions / status changes: cmdline poll_iters=N,
 * default 200000.  Every iteration does one MMIO read (so the bound is
 * roughly a time limit rather than a CPU-speed-dependent spin). */
u32 virtio_poll_iters(void);

static inline u32 vm_read(const struct vdev *d, u32 off) { return *(volatile u32 *)(d->base + off); }
static inline void vm_write(const struct vdev *d, u32 off, u32 v) { *(volatile u32 *)(d->base + off) = v; }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

/* Finds the index-th (0-based) device with the given DeviceID among the
 * cmdline's virtio_mmio.device entries (MagicValue and Version 2 checked;
 * other entries are reported as "info:" lines).  0 on success, -1 if none. */
int virtio_find(u32 device_id, int index, struct vdev *d, const char *who);

/* Status=0 and wait (bounded) until it reads back 0.  0 ok, -1 timeout. */
int virtio_reset(struct vdev *d);
/* Reset, ACKNOWLEDGE, DRIVER, read features, accept (offered & want) plus
 * VERSION_1 (required), FEATURES_OK and re-check.  0 ok, -1 (message
 * printed with prefix who) on failure (Status is then set to FAILED). */
int virtio_negotiate(struct vdev *d, u64 want, const char *who);
/* Queue 0 with qnum entries (<= VQ_SIZE, <= QueueNumMax), rings in .bss,
 * QueueReady=1.  0 ok, -1 on failure. */
int virtio_setup_queue(struct vdev *d, u16 qnum, const char *who);
/* Writes QueueNum and the three ring addresses of the selected queue, then
 * QueueReady=1; returns QueueReady as read back.  Checks nothing: hostile
 * tests write what a driver must not. */
u32 virtio_write_queue(struct vdev *d, u32 qnum, u64 da, u64 aa, u64 ua);
/* negotiate + setup_queue(VQ_SIZE or QueueNumMax) + DRIVER_OK. */
int virtio_init(struct vdev *d, u64 want, const char *who);
void virtio_driver_ok(struct vdev *d);
static inline u32 virtio_status(const struct vdev *d) { return vm_read(d, VIRTIO_MMIO_STATUS); }

u32 virtio_cfg_read32(const struct vdev *d, u32 off);
u64 virtio_cfg_read64(const struct vdev *d, u32 off); /* 2 x 32-bit, ConfigGeneration retry */

/* The shared ring memory (one queue), exposed for hand-made chains. */
extern struct vring_desc vq_desc_mem[VQ_SIZE];

/* Puts head into the avail ring, advances avail->idx by one and notifies. */
void vq_publish(struct vdev *d, u16 head);
/* Waits (bounded) until used->idx moves past d->used_idx; consumes one
 * element.  Acknowledges InterruptStatus.  0 completed, -1 timeout. */
int vq_wait(struct vdev *d, u32 *id, u32 *len);

/* A buffer of a chain: write = device-writable. */
struct vbuf {
    u64 addr;
    u32 len;
    int write;
};
/* Builds a chain from bufs (descriptors d->next_desc, +1, ... mod qnum),
 * publishes and waits.  0 ok (used id checked), -1 timeout, -2 wrong used
 * id.  *used_len may be NULL. */
int vq_submit(struct vdev *d, const struct vbuf *bufs, int n, u32 *used_len);

/* virtio-blk request: header(type, sector) + the given data buffers (their
 * direction is set from type: IN/GET_ID device-writable, else readable) +
 * status byte.  Returns the status byte (0..255), -1 on timeout, -2 on a
 * wrong used id.  data/len pairs: nbufs of them (0 for FLUSH). */
int blk_request(struct vdev *d, u32 type, u64 sector, const struct vbuf *data, int nbufs, u32 *used_len);
/* Single-buffer convenience wrapper. */
int blk_rw(struct vdev *d, u32 type, u64 sector, void *buf, u32 len, u32 *used_len);
const char *blk_status_name(int st);

/* ------------------------------------------------------------------ */
/* multi-queue API                                                     */
/* ------------------------------------------------------------------ */
#define VQN_MAX 64 /* largest queue a struct vqueue can hold */

struct vqn_avail {
    u16 flags;
    u16 idx;
    u16 ring[VQN_MAX];
    u16 used_event;
};
struct vqn_used {
    u16 flags;
    u16 idx;
    struct vring_used_elem ring[VQN_MAX];
    u16 avail_event;
};

/* One virtqueue: the rings (what the device sees) and the driver's state.
 * Declare these static (they are big and the rings need alignment). */
struct vqueue {
    struct vring_desc desc[VQN_MAX] __attribute__((aligned(4096)));
    struct vqn_avail avail __attribute__((aligned(64)));
    struct vqn_used used __attribute__((aligned(64)));
    u16 index;     /* queue index (QueueSel / QueueNotify value) */
    u16 qnum;      /* queue size in use */
    u32 qmax;      /* QueueNumMax of this queue */
    u16 avail_idx; /* next avail->idx the driver publishes */
    u16 used_idx;  /* last used->idx consumed */
    u16 free_head; /* free descriptor list (linked through next_of[]) */
    u16 nfree;
    u16 next_of[VQN_MAX];   /* driver's own copy of the chain links */
    u16 chain_len[VQN_MAX]; /* descriptors of the chain headed here; 0 = head not in flight */
    u64 cookie[VQN_MAX];    /* caller's tag for the chain headed here */
};

/* Sets up queue `index` of d with q's rings: QueueSel, QueueNumMax check,
 * QueueNum = qnum (0: the largest power of two <= min(VQN_MAX,
 * QueueNumMax); otherwise rounded down to one), rings, QueueReady=1.
 * Clears q.  0 ok, -1 (FAIL line printed with prefix who) on failure. */
int virtio_setup_queue_n(struct vdev *d, u16 index, struct vqueue *q, u16 qnum, const char *who);
/* QueueNumMax of queue index (0 = queue not available). */
u32 virtio_queue_num_max(struct vdev *d, u16 index);
/* DRIVER_OK, then checks Status (DRIVER_OK set, no NEEDS_RESET/FAILED).
 * 0 ok, -1 (FAIL line printed) otherwise. */
int virtio_driver_ok_check(struct vdev *d, const char *who);
/* Device configuration space, accessed with the width of the field (4.2.2.2). */
u8 virtio_cfg_read8(const struct vdev *d, u32 off);
u16 virtio_cfg_read16(const struct vdev *d, u32 off);
/* ConfigGeneration before/after a multi-field read; retry until equal. */
static inline u32 virtio_cfg_generation(const struct vdev *d) { return vm_read(d, VIRTIO_MMIO_CONFIG_GENERATION); }

/* Writes a chain of n buffers into free descriptors (in bufs[] order; the
 * caller keeps device-readable before device-writable).  Does not publish.
 * Returns the head, or -1 if fewer than n descriptors are free (or n == 0). */
int vqueue_add(struct vqueue *q, const struct vbuf *bufs, int n, u64 cookie);
/* Puts head into the avail ring and advances avail->idx (no notify). */
void vqueue_make_avail(struct vqueue *q, u16 head);
/* QueueNotify = q->index. */
void vqueue_kick(struct vdev *d, struct vqueue *q);
/* add + make_avail + kick.  Returns the head or -1. */
int vqueue_post(struct vdev *d, struct vqueue *q, const struct vbuf *bufs, int n, u64 cookie);
/* Non-blocking: consumes one used element if there is one and frees its
 * chain.  Returns 1 (filled *id, *len, *cookie; each may be NULL), 0 if
 * the used ring has nothing new, -2 if the device returned an id that is
 * not the head of a chain in flight (an "info:" line is printed; the
 * element is consumed). */
int vqueue_get(struct vdev *d, struct vqueue *q, u32 *id, u32 *len, u64 *cookie);
/* vqueue_get, polling up to polls times (0: virtio_poll_iters()), one MMIO
 * read per poll.  0 got one, -1 timeout, -2 bad id. */
int vqueue_wait(struct vdev *d, struct vqueue *q, u32 *id, u32 *len, u64 *cookie, u32 polls);
/* Synchronous: post one chain and wait for it.  0 ok, -1 timeout, -2 a
 * different/bad id came back.  *used_len may be NULL. */
int vqueue_submit(struct vdev *d, struct vqueue *q, const struct vbuf *bufs, int n, u32 *used_len);
/* Descriptors in flight (posted, not yet used). */
static inline int vqueue_in_flight(const struct vqueue *q) { return q->qnum - q->nfree; }

/* Test pattern helpers: sector s holds 64 little-endian u64 values (tag | s). */
void blk_fill_pattern(void *buf, u64 first_sector, u32 nsect, u64 tag);
/* Returns -1 if buf matches, else the index of the first bad sector; the
 * found value is stored in *got. */
int blk_check_pattern(const void *buf, u64 first_sector, u32 nsect, u64 tag, u64 *got);

#endif
