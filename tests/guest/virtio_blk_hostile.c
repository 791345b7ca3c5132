/*
 * virtio_blk_hostile: submits exactly one malformed request (case=NAME) to
 * the first virtio-mmio block device through the real transport, then polls
 * the device Status for DEVICE_NEEDS_RESET (0x40), bounded.  Prints
 *   "virtio_blk_hostile: <case>: needs_reset"   (exit 0) or
 *   "virtio_blk_hostile: <case>: no reset"      (exit 1)
 * (bad_queue_size may also print "...: refused (QueueReady reads 0)", exit
 * 0).  With recover=1 the device is then reset, re-initialised and one
 * valid 1-sector read is done ("virtio_blk_hostile: recovered", else a
 * FAIL line and exit 1).  Always ends with "virtio_blk_hostile: still
 * alive".  Unknown/missing case=: FAIL line, exit 2.
 *
 * Limits (the device's, not the ring's), on a queue of 256 entries:
 *   seg_max: a read of seg_max one-sector segments must complete OK and
 *     one of seg_max + 1 with IOERR, the device staying usable:
 *     "virtio_blk_hostile: seg_max: <n> segments OK, <n+1> IOERR" (exit 0).
 *   flood: every entry of the queue an INDIRECT chain into one shared table
 *     of 65536 descriptors (a 1 MiB read in 65534 segments), all made
 *     available with one notify.  Prints "virtio_blk_hostile: flood: <n>
 *     chains made available", then the needs_reset / no reset line, then
 *     "virtio_blk_hostile: flood: spinning" and halts forever: the test
 *     outside checks the VMM's memory, its API and that SIGTERM ends it.
 *
 * Other tokens: mem_mib=N (RAM size: addr_oob uses the end of RAM instead
 * of 0x7f0000000000), oob_addr=A (addr_oob buffer address), queue_num=N
 * (bad_queue_size value, default QueueNumMax + 1), blk_index=N,
 * poll_iters=N.
 */
#include "virtio_mmio.h"

#define WHO "virtio_blk_hostile"

static const struct {
    const char *name, *what;
} cases[] = {
    {"loop", "descriptor 2-cycle 1 -> 2 -> 1 after the header"},
    {"loop_self", "descriptor 1 whose next is itself"},
    {"next_oob", "header next = queue size"},
    {"head_oob", "avail ring entry = queue size"},
    {"addr_oob", "data buffer outside guest RAM"},
    {"addr_straddle", "512-byte data buffer starting 256 bytes before the end of RAM"},
    {"len_overflow", "two data buffers of 0xffff0000 bytes (sum > 2^32)"},
    {"indirect_not_negotiated", "INDIRECT descriptor without VIRTIO_F_RING_INDIRECT_DESC"},
    {"indirect_nested", "indirect table containing an INDIRECT descriptor"},
    {"indirect_misaligned", "indirect table length 20"},
    {"indirect_with_next", "INDIRECT | NEXT on one descriptor"},
    {"write_before_read", "device-readable descriptor after a device-writable one"},
    {"avail_jump", "avail idx advanced by queue size + 1"},
    {"unknown_flags", "descriptor flag 0x8"},
    {"bad_queue_size", "QueueNum not a power of two / above QueueNumMax"},
    {"indirect_2000", "an indirect chain of 2000 data segments, longer than the queue"},
    {"indirect_65536", "an indirect table of 65536 descriptors, longer than the queue"},
    {"seg_max", "reads of seg_max and seg_max + 1 segments on a queue of 256"},
    {"flood", "256 chains into one indirect table of 65536 descriptors"},
};

static u8 data[2 * SECTOR_SIZE] __attribute__((aligned(4096)));
static struct virtio_blk_req_hdr hdr __attribute__((aligned(16)));
static volatile u8 status;
static u8 extra[16] __attribute__((aligned(16)));
static struct vring_desc itab[4] __attribute__((aligned(16)));
static struct vring_desc itab2[4] __attribute__((aligned(16)));
/* Rings big enough for a queue of up to 1024 entries: descriptors at +0,
 * the available ring at +0x5000, the used ring at +0x6000. */
static u8 bigring[0x9000] __attribute__((aligned(4096)));
#define BIG_DESC ((volatile struct vring_desc *)bigring)
#define BIG_AVAIL ((volatile u16 *)(bigring + 0x5000)) /* flags, idx, ring[] */
#define BIG_USED ((volatile u16 *)(bigring + 0x6000))  /* flags, idx, elements */
/* indirect_* and flood: one table of the most entries a table may have
 * (1 MiB), in RAM at 8 MiB: the image itself must stay below 2 MiB. */
#define HUGE_ENTRIES 65536
#define huge ((volatile struct vring_desc *)0x800000UL)
#define HUGE_BYTES (HUGE_ENTRIES * sizeof(struct vring_desc))
static u8 segbuf[SECTOR_SIZE] __attribute__((aligned(4096)));
static void fill_huge_table(void);

static void set_desc(volatile struct vring_desc *t, int i, u64 addr, u32 len, u16 flags, u16 next)
{
    t[i].addr = addr;
    t[i].len = len;
    t[i].flags = flags;
    t[i].next = next;
}

/* A valid 1-sector read of sector 0 in t[0] -> t[1] -> t[2]. */
static void valid_chain(volatile struct vring_desc *t)
{
    set_desc(t, 0, (u64)&hdr, sizeof(hdr), VRING_DESC_F_NEXT, 1);
    set_desc(t, 1, (u64)data, SECTOR_SIZE, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
    set_desc(t, 2, (u64)&status, 1, VRING_DESC_F_WRITE, 0);
}

static int is(const char *c, const char *name) { return !strcmp(c, name); }

static u64 ram_end(void)
{
    u64 mib, end = 0;
    if (cmdline_get_u64("mem_mib", &mib))
        return mib <= 3072 ? mib << 20 : FOUR_GIB + ((mib - 3072) << 20);
    for (int i = 0; i < g_boot.nr_mem; i++)
        if (g_boot.mem[i].type == E820_TYPE_RAM && g_boot.mem[i].addr + g_boot.mem[i].size > end)
            end = g_boot.mem[i].addr + g_boot.mem[i].size;
    return end;
}

/* Builds the malformed request for case c in the (fresh) queue and makes it
 * available.  Returns 0, or EXIT_* on a setup problem. */
static int submit(struct vdev *d, const char *c)
{
    volatile struct vring_desc *q = d->desc;
    const u16 W = VRING_DESC_F_WRITE, N = VRING_DESC_F_NEXT, I = VRING_DESC_F_INDIRECT;
    hdr.type = VIRTIO_BLK_T_IN;
    hdr.reserved = 0;
    hdr.sector = 0;
    status = 0xff;

    if (is(c, "loop")) {
        set_desc(q, 0, (u64)&hdr, sizeof(hdr), N, 1);
        set_desc(q, 1, (u64)data, 256, W | N, 2);
        set_desc(q, 2, (u64)data + 256, 256, W | N, 1);
    } else if (is(c, "loop_self")) {
        set_desc(q, 0, (u64)&hdr, sizeof(hdr), N, 1);
        set_desc(q, 1, (u64)data, SECTOR_SIZE, W | N, 1);
    } else if (is(c, "next_oob")) {
        valid_chain(q);
        q[0].next = d->qnum;
    } else if (is(c, "head_oob")) {
        valid_chain(q);
        vq_publish(d, d->qnum);
        return 0;
    } else if (is(c, "addr_oob") || is(c, "addr_straddle")) {
        u64 a, mib, end = ram_end();
        u32 len = SECTOR_SIZE;
        if (is(c, "addr_straddle")) {
            if (end < 0x200000) {
                gprintf("FAIL: " WHO ": end of RAM unknown (give mem_mib=N)\n");
                return EXIT_USAGE;
            }
            a = end - 256;
        } else if (!cmdline_get_u64("oob_addr", &a)) {
            a = cmdline_get_u64("mem_mib", &mib) ? end : 0x7f0000000000UL;
        }
        gprintf("info: data buffer [0x%lx, 0x%lx), end of RAM 0x%lx\n", a, a + len, end);
        valid_chain(q);
        q[1].addr = a;
        q[1].len = len;
    } else if (is(c, "len_overflow")) {
        set_desc(q, 0, (u64)&hdr, sizeof(hdr), N, 1);
        set_desc(q, 1, (u64)data, 0xffff0000u, W | N, 2);
        set_desc(q, 2, (u64)data + SECTOR_SIZE, 0xffff0000u, W | N, 3);
        set_desc(q, 3, (u64)&status, 1, W, 0);
    } else if (is(c, "indirect_not_negotiated")) {
        valid_chain(itab);
        set_desc(q, 0, (u64)itab, 3 * sizeof(struct vring_desc), I, 0);
    } else if (is(c, "indirect_nested")) {
        set_desc(itab, 0, (u64)&hdr, sizeof(hdr), N, 1);
        set_desc(itab, 1, (u64)itab2, 2 * sizeof(struct vring_desc), I, 0);
        set_desc(itab2, 0, (u64)data, SECTOR_SIZE, W | N, 1);
        set_desc(itab2, 1, (u64)&status, 1, W, 0);
        set_desc(q, 0, (u64)itab, 2 * sizeof(struct vring_desc), I, 0);
    } else if (is(c, "indirect_misaligned")) {
        valid_chain(itab);
        set_desc(q, 0, (u64)itab, 20, I, 0);
    } else if (is(c, "indirect_with_next")) {
        valid_chain(itab);
        set_desc(q, 0, (u64)itab, 3 * sizeof(struct vring_desc), I | N, 1);
        set_desc(q, 1, (u64)extra, 1, W, 0);
    } else if (is(c, "write_before_read")) {
        set_desc(q, 0, (u64)&hdr, sizeof(hdr), N, 1);
        set_desc(q, 1, (u64)data, SECTOR_SIZE, W | N, 2);
        set_desc(q, 2, (u64)extra, sizeof(extra), N, 3);
        set_desc(q, 3, (u64)&status, 1, W, 0);
    } else if (is(c, "avail_jump")) {
        valid_chain(q);
        d->avail->ring[0] = 0;
        barrier();
        d->avail_idx = (u16)(d->qnum + 1);
        d->avail->idx = d->avail_idx;
        barrier();
        vm_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
        return 0;
    } else if (is(c, "unknown_flags")) {
        valid_chain(q);
        q[0].flags |= 0x8;
    } else if (is(c, "indirect_2000")) {
        /* 2000 one-sector segments: 2000 sectors of the 2048 of the image. */
        set_desc(huge, 0, (u64)&hdr, sizeof(hdr), N, 1);
        for (int i = 1; i <= 2000; i++)
            set_desc(huge, i, (u64)segbuf, SECTOR_SIZE, W | N, (u16)(i + 1));
        set_desc(huge, 2001, (u64)&status, 1, W, 0);
        set_desc(q, 0, (u64)huge, 2002 * sizeof(struct vring_desc), I, 0);
    } else if (is(c, "indirect_65536")) {
        fill_huge_table();
        set_desc(q, 0, (u64)huge, HUGE_BYTES, I, 0);
    }
    vq_publish(d, 0);
    return 0;
}

/* Polls Status for NEEDS_RESET; stops early 2000 polls after a completion. */
static int wait_needs_reset(struct vdev *d, u32 iters, int *completed)
{
    u32 grace = 0;
    for (u32 i = 0; i < iters; i++) {
        if (virtio_status(d) & VIRTIO_STATUS_NEEDS_RESET)
            return 1;
        if (!*completed && d->used->idx != d->used_idx)
            *completed = 1;
        if (*completed && ++grace > 2000)
            break;
    }
    return 0;
}

/* Programs queue 0 (already selected) with QueueNum qn on the rings in
 * bigring, zeroed; returns QueueReady as read back. */
static u32 program_big_queue(struct vdev *d, u32 qn)
{
    u64 da = (u64)bigring;
    memset(bigring, 0, sizeof(bigring));
    return virtio_write_queue(d, qn, da, da + 0x5000, da + 0x6000);
}

/* Negotiates indirect descriptors and sets up queue 0 in bigring with 256
 * entries (fewer if QueueNumMax says so), then DRIVER_OK.  Returns the
 * queue size, 0 on failure (FAIL line printed). */
static u32 big_queue_init(struct vdev *d)
{
    if (virtio_negotiate(d, FEAT(VIRTIO_F_RING_INDIRECT_DESC), WHO))
        return 0;
    if (!(d->drv_features & FEAT(VIRTIO_F_RING_INDIRECT_DESC))) {
        gprintf("FAIL: " WHO ": device does not offer VIRTIO_F_RING_INDIRECT_DESC\n");
        return 0;
    }
    vm_write(d, VIRTIO_MMIO_QUEUE_SEL, 0);
    u32 qn = 256, qmax = vm_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
    while (qn > qmax)
        qn >>= 1;
    if (qn == 0 || !program_big_queue(d, qn)) {
        gprintf("FAIL: " WHO ": cannot set up a queue of %u entries (QueueNumMax %u)\n", qn, qmax);
        return 0;
    }
    if (virtio_driver_ok_check(d, WHO))
        return 0;
    return qn;
}

/* Makes entries [first, first + n) of BIG_DESC available (heads in order)
 * on a queue of qn entries, then notifies once. */
static void big_publish(struct vdev *d, u32 qn, u16 first, u32 n)
{
    u16 idx = BIG_AVAIL[1];
    for (u32 i = 0; i < n; i++)
        BIG_AVAIL[2 + (u16)(idx + i) % qn] = (u16)(first + i);
    barrier();
    BIG_AVAIL[1] = (u16)(idx + n);
    barrier();
    vm_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

/* seg_max: 0 as expected, -1 otherwise. */
static int seg_max_case(struct vdev *d)
{
    static struct vring_desc segtab[256] __attribute__((aligned(16)));
    u32 qn = big_queue_init(d);
    if (!qn)
        return -1;
    u32 seg_max = virtio_cfg_read32(d, VIRTIO_BLK_CFG_SEG_MAX);
    gprintf("info: seg_max %u, queue size %u\n", seg_max, qn);
    if (!(d->dev_features & FEAT(2)) || seg_max == 0 || seg_max + 3 > qn) {
        gprintf("FAIL: " WHO ": seg_max %u not offered or too large for a queue of %u\n", seg_max, qn);
        return -1;
    }
    int got[2];
    for (u32 k = 0; k < 2; k++) {
        u32 n = seg_max + k;
        hdr.type = VIRTIO_BLK_T_IN;
        hdr.reserved = 0;
        hdr.sector = 0;
        status = 0xff;
        set_desc(segtab, 0, (u64)&hdr, sizeof(hdr), VRING_DESC_F_NEXT, 1);
        for (u32 i = 1; i <= n; i++)
            set_desc(segtab, (int)i, (u64)segbuf, SECTOR_SIZE, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, (u16)(i + 1));
        set_desc(segtab, (int)n + 1, (u64)&status, 1, VRING_DESC_F_WRITE, 0);
        set_desc(BIG_DESC, (int)k, (u64)segtab, (n + 2) * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
        u16 used = BIG_USED[1];
        big_publish(d, qn, (u16)k, 1);
        u32 i = 0, iters = virtio_poll_iters();
        while (BIG_USED[1] == used && !(virtio_status(d) & VIRTIO_STATUS_NEEDS_RESET) && i++ < iters)
            ;
        got[k] = BIG_USED[1] != used ? status : (virtio_status(d) & VIRTIO_STATUS_NEEDS_RESET) ? -3 : -1;
        gprintf("info: a read of %u segments: %s\n", n,
                got[k] == -3 ? "the device needs reset" : blk_status_name(got[k]));
    }
    if (got[0] != VIRTIO_BLK_S_OK || got[1] != VIRTIO_BLK_S_IOERR) {
        gprintf("FAIL: " WHO ": seg_max: expected OK for %u segments and IOERR for %u\n", seg_max, seg_max + 1);
        return -1;
    }
    gprintf(WHO ": seg_max: %u segments OK, %u IOERR\n", seg_max, seg_max + 1);
    return 0;
}

/* Fills huge[] with one read of sector 0: the header, 65534 segments of
 * 1 MiB in all (2048 sectors) and the status byte. */
static void fill_huge_table(void)
{
    hdr.type = VIRTIO_BLK_T_IN;
    hdr.reserved = 0;
    hdr.sector = 0;
    status = 0xff;
    set_desc(huge, 0, (u64)&hdr, sizeof(hdr), VRING_DESC_F_NEXT, 1);
    for (int i = 1; i <= 65534; i++)
        set_desc(huge, i, (u64)segbuf, i <= 65532 ? 16 : 32, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, (u16)(i + 1));
    set_desc(huge, 65535, (u64)&status, 1, VRING_DESC_F_WRITE, 0);
}

/* flood: never returns but on a setup failure (-1). */
static int flood(struct vdev *d)
{
    u32 qn = big_queue_init(d);
    if (!qn)
        return -1;
    fill_huge_table();
    for (u32 h = 0; h < qn; h++)
        set_desc(BIG_DESC, (int)h, (u64)huge, HUGE_BYTES, VRING_DESC_F_INDIRECT, 0);
    big_publish(d, qn, 0, qn);
    gprintf(WHO ": flood: %u chains made available\n", qn);
    int reset = 0;
    for (u32 i = 0, n = virtio_poll_iters(); i < n && !reset; i++)
        reset = (virtio_status(d) & VIRTIO_STATUS_NEEDS_RESET) != 0;
    gprintf(WHO ": flood: %s (used idx %u)\n", reset ? "needs_reset" : "no reset", BIG_USED[1]);
    gprintf(WHO ": flood: spinning\n");
    for (;;)
        __asm__ volatile("cli\n\thlt" ::: "memory");
}

/* bad_queue_size: 1 needs_reset, 2 refused, 0 neither, -1 setup failure. */
static int bad_queue_size(struct vdev *d)
{
    u64 qn;
    if (virtio_negotiate(d, 0, WHO))
        return -1;
    vm_write(d, VIRTIO_MMIO_QUEUE_SEL, 0);
    u32 qmax = vm_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
    if (!cmdline_get_u64("queue_num", &qn))
        qn = (u64)qmax + 1;
    gprintf("info: QueueNumMax %u, writing QueueNum %lu\n", qmax, qn);
    u32 ready = program_big_queue(d, (u32)qn);
    virtio_driver_ok(d);
    u32 iters = virtio_poll_iters();
    for (u32 i = 0; i < (iters < 20000 ? iters : 20000); i++)
        if (virtio_status(d) & VIRTIO_STATUS_NEEDS_RESET) {
            gprintf("info: QueueReady read back %u, Status 0x%x\n", ready, virtio_status(d));
            return 1;
        }
    gprintf("info: QueueReady read back %u, Status 0x%x\n", ready, virtio_status(d));
    return ready == 0 ? 2 : 0;
}

static int recover(struct vdev *d)
{
    u32 len = 0;
    u64 got;
    if (virtio_reset(d)) {
        gprintf("FAIL: " WHO ": Status 0x%x after writing 0 (reset)\n", virtio_status(d));
        return -1;
    }
    if (virtio_init(d, 0, WHO))
        return -1;
    memset(data, 0xee, sizeof(data));
    int st = blk_rw(d, VIRTIO_BLK_T_IN, 1, data, SECTOR_SIZE, &len);
    if (st != VIRTIO_BLK_S_OK) {
        gprintf("FAIL: " WHO ": read after re-initialisation: status %s (%d)\n", blk_status_name(st), st);
        return -1;
    }
    gprintf("info: read of sector 1 after recovery: used len %u, %s\n", len,
            blk_check_pattern(data, 1, 1, 0, &got) < 0 ? "pattern ok" : "data differs from the test pattern");
    gprintf(WHO ": recovered\n");
    return 0;
}

int guest_main(const struct boot_info *bi)
{
    (void)bi;
    struct vdev d;
    u64 index = 0, v;
    size_t clen;
    const char *cv = cmdline_get("case", &clen);
    char c[32];
    int ci = -1, rc;

    if (cv && clen < sizeof(c)) {
        memcpy(c, cv, clen);
        c[clen] = 0;
        for (int i = 0; i < (int)ARRAY_SIZE(cases); i++)
            if (is(c, cases[i].name))
                ci = i;
    }
    if (ci < 0) {
        gprintf("FAIL: " WHO ": missing or unknown case= (one of:");
        for (int i = 0; i < (int)ARRAY_SIZE(cases); i++)
            gprintf(" %s", cases[i].name);
        gprintf(")\n");
        return EXIT_USAGE;
    }
    int want_recover = cmdline_get_u64("recover", &v) && v == 1;

    cmdline_get_u64("blk_index", &index);
    if (virtio_find(VIRTIO_ID_BLOCK, (int)index, &d, WHO)) {
        gprintf("FAIL: " WHO ": no virtio-mmio block device #%lu on the cmdline\n", index);
        return EXIT_FAIL;
    }
    gprintf("info: " WHO ": device at 0x%lx irq %u, case %s: %s\n", d.base, d.irq, c, cases[ci].what);

    if (is(c, "seg_max") || is(c, "flood")) {
        rc = is(c, "seg_max") ? seg_max_case(&d) : flood(&d);
        if (rc == 0 && want_recover && recover(&d))
            rc = -1;
        gprintf(WHO ": still alive\n");
        return rc == 0 ? EXIT_PASS : EXIT_FAIL;
    }
    int outcome; /* 1 needs_reset, 2 refused, 0 no reset */
    if (is(c, "bad_queue_size")) {
        outcome = bad_queue_size(&d);
        if (outcome < 0)
            return EXIT_FAIL;
    } else {
        int indirect = !strncmp(c, "indirect_", 9) && !is(c, "indirect_not_negotiated");
        if (virtio_init(&d, indirect ? FEAT(VIRTIO_F_RING_INDIRECT_DESC) : 0, WHO))
            return EXIT_FAIL;
        gprintf("info: features offered 0x%lx, accepted 0x%lx, queue size %u\n", d.dev_features, d.drv_features,
                d.qnum);
        if (indirect && !(d.drv_features & FEAT(VIRTIO_F_RING_INDIRECT_DESC))) {
            gprintf("FAIL: " WHO ": device does not offer VIRTIO_F_RING_INDIRECT_DESC\n");
            return EXIT_FAIL;
        }
        if ((rc = submit(&d, c)) != 0)
            return rc;
        int completed = 0;
        outcome = wait_needs_reset(&d, virtio_poll_iters(), &completed);
        if (completed)
            gprintf("info: the device completed the request: used idx %u, id %u, len %u, status byte 0x%x\n",
                    d.used->idx, d.used->ring[0].id, d.used->ring[0].len, status);
    }

    rc = EXIT_FAIL;
    if (outcome == 1) {
        gprintf(WHO ": %s: needs_reset\n", c);
        rc = EXIT_PASS;
    } else if (outcome == 2) {
        gprintf(WHO ": %s: refused (QueueReady reads 0)\n", c);
        rc = EXIT_PASS;
    } else {
        gprintf("info: device Status 0x%x\n", virtio_status(&d));
        gprintf(WHO ": %s: no reset\n", c);
    }
    if (rc == EXIT_PASS && want_recover && recover(&d))
        rc = EXIT_FAIL;
    gprintf(WHO ": still alive\n");
    return rc;
}
