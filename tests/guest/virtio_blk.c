/*
 * virtio_blk: drives the first virtio-mmio block device announced on the
 * cmdline (virtio_mmio.device=<size>@<addr>:<irq>) with well-formed
 * requests.  The image is expected to hold the test pattern of
 * make_blk_image.py: sector s = 64 little-endian u64 values equal to s.
 *
 * One "ok: ..." / "FAIL: ..." line per check ("info:"/"skip:" are not
 * checks), then "virtio_blk: PASS" (exit 0) or "virtio_blk: FAIL" (exit 1);
 * exit 2 for a bad write_sector=.
 *
 * Cmdline tokens: expect_sectors=N, expect_id=STR, expect_ro=1,
 * write_sector=N (default 16; sectors N..N+3 are written with
 * 0xA5A5000000000000 | sector), blk_index=N (N-th block device, default 0),
 * poll_iters=N (completion poll bound, default 200000).
 */
#include "virtio_mmio.h"

#define WHO "virtio_blk"
#define TAG_W 0xA5A5000000000000UL
#define NSECT 8
#define NWRITE 4


/* +16: room for a status byte right after 8 sectors (any-layout test). */
static u8 buf[NSECT * SECTOR_SIZE + 16] __attribute__((aligned(4096)));
static u8 buf2[NSECT * SECTOR_SIZE + 16] __attribute__((aligned(4096)));
static u8 idbuf[VIRTIO_BLK_ID_BYTES + 4] __attribute__((aligned(16)));
static struct virtio_blk_req_hdr hdr2 __attribute__((aligned(16)));

static u64 g_ws;  /* first written sector */
static int g_ro;  /* expect_ro=1: nothing gets written */

static u64 tag_of(u64 sector) { return !g_ro && sector >= g_ws && sector < g_ws + NWRITE ? TAG_W : 0; }

/* A timed-out request leaves the queue unusable (and every further one
 * would wait the full poll bound): give up. */
static int done(const struct vdev *d, int st)
{
    if (st == -1) {
        check(0, "request completed within poll_iters (device Status 0x%x); giving up", virtio_status(d));
        gprintf(WHO ": FAIL\n");
        guest_exit(EXIT_FAIL);
    }
    return st;
}

static void poison(void)
{
    memset(buf, 0xee, sizeof(buf));
    memset(buf2, 0xee, sizeof(buf2));
}

/* Status, used length and pattern of a read of nsect sectors into data. */
static void check_read(const char *what, int st, u32 used_len, const u8 *data, u64 sector, u32 nsect)
{
    check(st == VIRTIO_BLK_S_OK, "%s: status %s (%d)", what, blk_status_name(st), st);
    if (st != VIRTIO_BLK_S_OK)
        return;
    check(used_len == nsect * SECTOR_SIZE + 1, "%s: used len %u == %u (data + status byte)", what, used_len,
          nsect * SECTOR_SIZE + 1);
    for (u32 i = 0; i < nsect; i++) {
        u64 got = 0, s = sector + i, tag = tag_of(s);
        if (blk_check_pattern(data + i * SECTOR_SIZE, s, 1, tag, &got) >= 0) {
            check(0, "%s: sector %lu holds 0x%lx, expected 0x%lx", what, s, got, tag | s);
            return;
        }
    }
    check(1, "%s: sectors %lu..%lu hold the expected pattern", what, sector, sector + nsect - 1);
}

static void print_id(void)
{
    serial_puts(WHO ": id \"");
    for (int i = 0; i < VIRTIO_BLK_ID_BYTES && idbuf[i]; i++)
        serial_putc(idbuf[i] >= 0x20 && idbuf[i] < 0x7f ? (char)idbuf[i] : '?');
    serial_puts("\"\n");
}

int guest_main(const struct boot_info *bi)
{
    (void)bi;
    struct vdev d;
    u64 v, index = 0;
    u32 len = 0;
    int st;

    cmdline_get_u64("blk_index", &index);
    if (virtio_find(VIRTIO_ID_BLOCK, (int)index, &d, WHO)) {
        check(0, "virtio-mmio block device #%lu on the cmdline (cmdline: \"%s\")", index, g_boot.cmdline);
        gprintf(WHO ": FAIL\n");
        return EXIT_FAIL;
    }
    u64 want = FEAT(VIRTIO_BLK_F_SIZE_MAX) | FEAT(VIRTIO_BLK_F_SEG_MAX) | FEAT(VIRTIO_BLK_F_GEOMETRY) |
               FEAT(VIRTIO_BLK_F_RO) | FEAT(VIRTIO_BLK_F_BLK_SIZE) | FEAT(VIRTIO_BLK_F_FLUSH) |
               FEAT(VIRTIO_BLK_F_TOPOLOGY);
    if (virtio_init(&d, want, WHO)) {
        checks_failed++;
        gprintf(WHO ": FAIL\n");
        return EXIT_FAIL;
    }
    u64 cap = virtio_cfg_read64(&d, VIRTIO_BLK_CFG_CAPACITY);
    gprintf(WHO ": device at 0x%lx irq %u, capacity %lu sectors, features 0x%lx\n", d.base, d.irq, cap,
            d.dev_features);
    gprintf("info: version %u vendor 0x%x, QueueNumMax %u (using %u), accepted features 0x%lx\n", d.version,
            d.vendor_id, d.qmax, d.qnum, d.drv_features);
    if (d.drv_features & FEAT(VIRTIO_BLK_F_BLK_SIZE))
        gprintf("info: blk_size %u\n", virtio_cfg_read32(&d, VIRTIO_BLK_CFG_BLK_SIZE));
    if (d.drv_features & FEAT(VIRTIO_BLK_F_SEG_MAX))
        gprintf("info: seg_max %u\n", virtio_cfg_read32(&d, VIRTIO_BLK_CFG_SEG_MAX));
    if (d.drv_features & FEAT(VIRTIO_BLK_F_SIZE_MAX))
        gprintf("info: size_max %u\n", virtio_cfg_read32(&d, VIRTIO_BLK_CFG_SIZE_MAX));
    check(1, "device initialised (Status 0x%x)", virtio_status(&d));

    if (cmdline_get_u64("expect_sectors", &v))
        check(cap == v, "capacity %lu == expect_sectors %lu", cap, v);
    else
        gprintf("skip: no expect_sectors=\n");

    g_ws = 16;
    size_t tlen;
    if (cmdline_get("write_sector", &tlen) && (!cmdline_get_u64("write_sector", &g_ws) || g_ws + NWRITE > cap)) {
        gprintf("FAIL: " WHO ": write_sector= must be a number with write_sector+%d <= capacity\n", NWRITE);
        return EXIT_USAGE;
    }
    g_ro = cmdline_get_u64("expect_ro", &v) && v == 1;

    /* 1. Sectors 0..7 in one data descriptor. */
    poison();
    st = done(&d, blk_rw(&d, VIRTIO_BLK_T_IN, 0, buf, NSECT * SECTOR_SIZE, &len));
    check_read("read 8 sectors, 1 data descriptor", st, len, buf, 0, NSECT);

    /* 2. Same, data split over 2 descriptors (3 + 5 sectors, separate buffers). */
    {
        struct vbuf b[2] = {{(u64)buf2, 3 * SECTOR_SIZE, 1},
                            {(u64)buf + 3 * SECTOR_SIZE, 5 * SECTOR_SIZE, 1}};
        poison();
        st = done(&d, blk_request(&d, VIRTIO_BLK_T_IN, 0, b, 2, &len));
        memcpy(buf, buf2, 3 * SECTOR_SIZE);
        check_read("read 8 sectors, 2 data descriptors", st, len, buf, 0, NSECT);
    }

    /* 3. Any layout (VIRTIO 1.x 2.7.4): header split 4+12 bytes, data split
     *    at byte 612 (not sector aligned), status byte in the same
     *    descriptor as the last data bytes. */
    {
        const u32 cut = 612, total = NSECT * SECTOR_SIZE;
        hdr2.type = VIRTIO_BLK_T_IN;
        hdr2.reserved = 0;
        hdr2.sector = 0;
        struct vbuf b[4] = {{(u64)&hdr2, 4, 0},
                            {(u64)&hdr2 + 4, sizeof(hdr2) - 4, 0},
                            {(u64)buf2, cut, 1},
                            {(u64)buf + cut, total - cut + 1, 1}};
        poison();
        int r = done(&d, vq_submit(&d, b, 4, &len));
        st = r ? r : buf[total];
        memcpy(buf, buf2, cut);
        check_read("read 8 sectors, any layout (4 descriptors, unaligned split)", st, len, buf, 0, NSECT);
    }

    /* 4. Write (or, read-only, try to) and read back with neighbours. */
    if (!g_ro) {
        check(!(d.dev_features & FEAT(VIRTIO_BLK_F_RO)), "device is writable (no VIRTIO_BLK_F_RO)");
        blk_fill_pattern(buf, g_ws, NWRITE, TAG_W);
        st = done(&d, blk_rw(&d, VIRTIO_BLK_T_OUT, g_ws, buf, NWRITE * SECTOR_SIZE, &len));
        check(st == VIRTIO_BLK_S_OK, "write sectors %lu..%lu: status %s (%d)", g_ws, g_ws + NWRITE - 1,
              blk_status_name(st), st);
        if (st == VIRTIO_BLK_S_OK)
            check(len == 1, "write: used len %u == 1 (status byte only)", len);
    } else {
        check(d.dev_features & FEAT(VIRTIO_BLK_F_RO), "device offers VIRTIO_BLK_F_RO (expect_ro=1)");
        blk_fill_pattern(buf, g_ws, 1, TAG_W);
        st = blk_rw(&d, VIRTIO_BLK_T_OUT, g_ws, buf, SECTOR_SIZE, &len);
        u32 dst = virtio_status(&d);
        check(st > 0 || (dst & VIRTIO_STATUS_NEEDS_RESET),
              "write to read-only device rejected (status %s (%d), device Status 0x%x)", blk_status_name(st), st,
              dst);
        if (dst & VIRTIO_STATUS_NEEDS_RESET) {
            gprintf("info: device needs reset after the write, re-initialising\n");
            if (virtio_init(&d, want, WHO))
                checks_failed++;
        }
    }
    {
        u64 first = g_ws > 0 ? g_ws - 1 : g_ws;
        u64 end = g_ws + NWRITE < cap ? g_ws + NWRITE + 1 : g_ws + NWRITE;
        poison();
        st = done(&d, blk_rw(&d, VIRTIO_BLK_T_IN, first, buf, (u32)(end - first) * SECTOR_SIZE, &len));
        check_read(g_ro ? "read back (unchanged) + neighbours" : "read back written sectors + neighbours", st, len,
                   buf, first, (u32)(end - first));
    }

    /* 5. FLUSH. */
    check(d.dev_features & FEAT(VIRTIO_BLK_F_FLUSH), "device offers VIRTIO_BLK_F_FLUSH");
    st = done(&d, blk_rw(&d, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, &len));
    check(st == VIRTIO_BLK_S_OK, "flush: status %s (%d)", blk_status_name(st), st);

    /* 6. GET_ID. */
    memset(idbuf, 0, sizeof(idbuf));
    st = done(&d, blk_rw(&d, VIRTIO_BLK_T_GET_ID, 0, idbuf, VIRTIO_BLK_ID_BYTES, &len));
    check(st == VIRTIO_BLK_S_OK, "get_id: status %s (%d)", blk_status_name(st), st);
    print_id();
    {
        size_t elen;
        const char *e = cmdline_get("expect_id", &elen);
        if (e)
            check(st == VIRTIO_BLK_S_OK && elen <= VIRTIO_BLK_ID_BYTES && !memcmp(idbuf, e, elen) &&
                      (elen == VIRTIO_BLK_ID_BYTES || idbuf[elen] == 0),
                  "id matches expect_id");
        else
            gprintf("skip: no expect_id=\n");
    }

    /* 7. Error paths: unknown type, past the end, straddling the end. */
    st = done(&d, blk_rw(&d, 0x7f00, 0, buf, SECTOR_SIZE, &len));
    check(st == VIRTIO_BLK_S_UNSUPP, "unknown request type 0x7f00: status %s (%d), want UNSUPP",
          blk_status_name(st), st);
    st = done(&d, blk_rw(&d, VIRTIO_BLK_T_IN, cap, buf, SECTOR_SIZE, &len));
    check(st > 0, "read of sector %lu (== capacity): status %s (%d), want non-OK", cap, blk_status_name(st), st);
    st = done(&d, blk_rw(&d, VIRTIO_BLK_T_IN, cap - 1, buf, 2 * SECTOR_SIZE, &len));
    check(st > 0, "read of sectors %lu..%lu (straddles the end): status %s (%d), want non-OK", cap - 1, cap,
          blk_status_name(st), st);

    /* 8. The device still works: last sector, final Status. */
    poison();
    st = done(&d, blk_rw(&d, VIRTIO_BLK_T_IN, cap - 1, buf, SECTOR_SIZE, &len));
    check_read("read last sector", st, len, buf, cap - 1, 1);
    u32 dst = virtio_status(&d);
    check((dst & VIRTIO_STATUS_DRIVER_OK) && !(dst & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)),
          "device Status 0x%x: DRIVER_OK, no NEEDS_RESET/FAILED", dst);
    virtio_reset(&d);

    if (checks_failed) {
        gprintf("info: %d checks failed, %d passed\n", checks_failed, checks_passed);
        gprintf(WHO ": FAIL\n");
        return EXIT_FAIL;
    }
    gprintf("info: all %d checks passed\n", checks_passed);
    gprintf(WHO ": PASS\n");
    return EXIT_PASS;
}
