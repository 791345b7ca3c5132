/*
 * virtio_rng: drives the first virtio-mmio entropy device (DeviceID 4,
 * VIRTIO 1.2 5.4; one queue, requestq = queue 0, no feature bits besides
 * VERSION_1) through the multi-queue API.
 *
 * Checks (one "ok:" / "FAIL:" line each):
 *  - init (VERSION_1 only), queue 0 set up, DRIVER_OK;
 *  - rng_bytes (default 4096) bytes read with requests of rng_req bytes
 *    (default 512) each: every used id is the head posted and every used
 *    len is 1..request size (5.4.6.1: at least one byte, maybe fewer than
 *    asked); short reads are continued with further requests (at most
 *    4 * rng_bytes requests);
 *  - the bytes are not all zero, not one repeated value, take at least 64
 *    distinct values, the first and the second half differ;
 *  - one request of two device-writable descriptors (32 + 32 bytes): used
 *    len 1..64, and a second 64-byte read differs from the first;
 *  - unless hostile=0, two hostile chains, each after a fresh
 *    initialisation:
 *      readonly  one device-READABLE 64-byte descriptor (5.4.6.1: the driver
 *                MUST NOT place driver-readable buffers): the device must set
 *                DEVICE_NEEDS_RESET or use it with len 0, and must not write
 *                to the buffer;
 *      oob       a 64-byte device-writable buffer outside guest RAM
 *                (oob_addr=A, else the end of RAM from mem_mib=N, else
 *                0x7f0000000000): DEVICE_NEEDS_RESET or a zero-length use;
 *    each prints "virtio_rng: hostile NAME: needs_reset" or "...: zero-length
 *    use", then the device is reset and re-initialised and a 64-byte read
 *    must work again ("virtio_rng: hostile NAME: recovered").
 *    hostile_lenient=1 (for QEMU) also accepts a device that neither uses
 *    the chain nor sets NEEDS_RESET ("...: ignored"; QEMU 7.2 does that for
 *    readonly) and, for oob, one that uses it with len > 0 ("...: used
 *    (len N)"; QEMU bounces writes to unassigned addresses into nothing).
 * Ends with "virtio_rng: PASS" (exit 0) or "virtio_rng: FAIL" (exit 1).
 *
 * Tokens: rng_bytes=N (64..4096), rng_req=N (1..4096), hostile=0,
 * hostile_lenient=1, oob_addr=A, mem_mib=N, rng_index=N, poll_iters=N.
 */
#include "virtio_mmio.h"

#define WHO "virtio_rng"
#define MAX_BYTES 4096

static struct vqueue rq;
static u8 pool[MAX_BYTES] __attribute__((aligned(64)));
static u8 req_buf[MAX_BYTES] __attribute__((aligned(64)));
static u8 small_a[64] __attribute__((aligned(64)));
static u8 small_b[64] __attribute__((aligned(64)));

static int finish(void)
{
    if (checks_failed) {
        gprintf("info: %d checks failed, %d passed\n", checks_failed, checks_passed);
        gprintf(WHO ": FAIL\n");
        return EXIT_FAIL;
    }
    gprintf("info: all %d checks passed\n", checks_passed);
    gprintf(WHO ": PASS\n");
    return EXIT_PASS;
}

static int init(struct vdev *d)
{
    if (virtio_negotiate(d, 0, WHO) || virtio_setup_queue_n(d, 0, &rq, 16, WHO) || virtio_driver_ok_check(d, WHO))
        return -1;
    return 0;
}

/* One request of `len` bytes into buf (n descriptors of len/n bytes).
 * Returns the used len, or -1 on timeout / -2 on a bad id (FAIL printed). */
static s64 read_once(struct vdev *d, u8 *buf, u32 len, int ndesc)
{
    struct vbuf b[2];
    u32 used = 0;
    for (int i = 0; i < ndesc; i++)
        b[i] = (struct vbuf){(u64)buf + i * (len / ndesc), i + 1 < ndesc ? len / ndesc : len - i * (len / ndesc), 1};
    int r = vqueue_submit(d, &rq, b, ndesc, &used);
    if (r) {
        check(0, "request of %u bytes: %s (Status 0x%x)", len, r == -1 ? "no completion within poll_iters" : "bad used id",
              virtio_status(d));
        return r;
    }
    return used;
}

/* Reads exactly len bytes with requests of up to req bytes. 0 ok. */
static int read_bytes(struct vdev *d, u8 *out, u32 len, u32 req, u32 *nreq)
{
    u32 got = 0;
    *nreq = 0;
    while (got < len) {
        u32 want = len - got < req ? len - got : req;
        if (++*nreq > 4 * len) {
            check(0, "%u bytes read after %u requests (the device keeps returning little)", got, *nreq - 1);
            return -1;
        }
        memset(req_buf, 0, want);
        s64 used = read_once(d, req_buf, want, 1);
        if (used < 0)
            return -1;
        if (used == 0 || used > want) {
            check(0, "request %u of %u bytes: used len %ld (want 1..%u)", *nreq, want, used, want);
            return -1;
        }
        memcpy(out + got, req_buf, (size_t)used);
        got += (u32)used;
    }
    return 0;
}

static void check_random(const u8 *p, u32 n)
{
    u8 seen[256];
    u32 zeros = 0, distinct = 0;
    memset(seen, 0, sizeof(seen));
    for (u32 i = 0; i < n; i++) {
        zeros += p[i] == 0;
        if (!seen[p[i]]++)
            distinct++;
    }
    check(zeros < n, "%u bytes not all zero (%u zero bytes)", n, zeros);
    check(distinct > 1, "%u bytes not one constant value (%u distinct values)", n, distinct);
    check(distinct >= (n >= 1024 ? 64 : 8), "%u bytes take %u distinct values", n, distinct);
    check(memcmp(p, p + n / 2, n / 2) != 0, "first and second half of the %u bytes differ", n);
}

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

/* One hostile chain on a freshly initialised device, then recovery. */
static void hostile(struct vdev *d, const char *name, int lenient)
{
    struct vbuf b;
    u64 mib, a;
    if (init(d)) {
        check(0, "hostile %s: initialisation", name);
        return;
    }
    if (!strcmp(name, "readonly")) {
        memset(small_a, 0x5a, sizeof(small_a));
        b = (struct vbuf){(u64)small_a, sizeof(small_a), 0};
    } else {
        if (!cmdline_get_u64("oob_addr", &a))
            a = cmdline_get_u64("mem_mib", &mib) ? ram_end() : 0x7f0000000000UL;
        gprintf("info: " WHO ": hostile oob: buffer at 0x%lx (end of RAM 0x%lx)\n", a, ram_end());
        b = (struct vbuf){a, 64, 1};
    }
    int head = vqueue_post(d, &rq, &b, 1, 0);
    u32 polls = virtio_poll_iters(), grace = 0, id = 0, len = 0;
    int used = 0, reset = 0;
    for (u32 i = 0; i < polls; i++) {
        if (virtio_status(d) & VIRTIO_STATUS_NEEDS_RESET) {
            reset = 1;
            break;
        }
        if (!used) {
            int r = vqueue_get(d, &rq, &id, &len, NULL);
            if (r)
                used = r == 1 ? 1 : -1;
        }
        if (used && ++grace > 2000) /* give NEEDS_RESET a moment after a use */
            break;
    }
    if (used)
        gprintf("info: " WHO ": hostile %s: used id %u (head %d) len %u\n", name, id, head, len);
    if (!strcmp(name, "readonly")) {
        u32 changed = 0;
        for (u32 i = 0; i < sizeof(small_a); i++)
            changed += small_a[i] != 0x5a;
        check(changed == 0, "hostile readonly: device did not write the readable buffer (%u bytes changed)", changed);
    }
    if (reset) {
        gprintf(WHO ": hostile %s: needs_reset\n", name);
        check(1, "hostile %s: DEVICE_NEEDS_RESET (Status 0x%x)", name, virtio_status(d));
    } else if (used == 1 && len == 0) {
        gprintf(WHO ": hostile %s: zero-length use\n", name);
        check(1, "hostile %s: used with len 0", name);
    } else if (!used && lenient) {
        gprintf(WHO ": hostile %s: ignored\n", name);
        check(1, "hostile %s: neither used nor NEEDS_RESET (accepted with hostile_lenient=1), Status 0x%x", name,
              virtio_status(d));
    } else if (used == 1 && lenient && strcmp(name, "readonly")) {
        gprintf(WHO ": hostile %s: used (len %u)\n", name, len);
        check(1, "hostile %s: used with len %u, the writes went nowhere (accepted with hostile_lenient=1)", name, len);
    } else {
        check(0, "hostile %s: want DEVICE_NEEDS_RESET or a zero-length use, got %s (len %u), Status 0x%x", name,
              used == 1 ? "a use" : used ? "a bad used id" : "neither", len, virtio_status(d));
    }

    /* Recovery: reset, re-initialise, one good read. */
    if (virtio_reset(d)) {
        check(0, "hostile %s: Status 0x%x after writing 0 (reset)", name, virtio_status(d));
        return;
    }
    if (init(d)) {
        check(0, "hostile %s: re-initialisation after reset", name);
        return;
    }
    memset(small_b, 0, sizeof(small_b));
    s64 n = read_once(d, small_b, sizeof(small_b), 1);
    if (n >= 1 && n <= (s64)sizeof(small_b)) {
        check(1, "hostile %s: 64-byte read after reset: used len %ld", name, n);
        gprintf(WHO ": hostile %s: recovered\n", name);
    } else if (n >= 0) {
        check(0, "hostile %s: 64-byte read after reset: used len %ld (want 1..64)", name, n);
    }
}

int guest_main(const struct boot_info *bi)
{
    (void)bi;
    struct vdev d;
    u64 v, index = 0, nbytes = MAX_BYTES, req = 512;
    u32 nreq;
    cmdline_get_u64("rng_index", &index);
    if (cmdline_get_u64("rng_bytes", &v) && v >= 64 && v <= MAX_BYTES)
        nbytes = v;
    if (cmdline_get_u64("rng_req", &v) && v >= 1 && v <= MAX_BYTES)
        req = v;
    if (virtio_find(VIRTIO_ID_RNG, (int)index, &d, WHO)) {
        check(0, "virtio-mmio entropy device #%lu on the cmdline (cmdline: \"%s\")", index, g_boot.cmdline);
        return finish();
    }
    if (init(&d)) {
        checks_failed++;
        return finish();
    }
    gprintf(WHO ": device at 0x%lx irq %u, features offered 0x%lx, accepted 0x%lx, queue size %u (QueueNumMax %u)\n",
            d.base, d.irq, d.dev_features, d.drv_features, rq.qnum, rq.qmax);
    check(1, "device initialised (Status 0x%x)", virtio_status(&d));

    if (read_bytes(&d, pool, (u32)nbytes, (u32)req, &nreq) == 0) {
        check(1, "read %lu bytes in %u requests of up to %lu bytes", nbytes, nreq, req);
        check_random(pool, (u32)nbytes);
    }

    /* Two-descriptor request, then a second read that must differ. */
    memset(small_a, 0, sizeof(small_a));
    memset(small_b, 0, sizeof(small_b));
    s64 n1 = read_once(&d, small_a, sizeof(small_a), 2);
    if (n1 >= 0)
        check(n1 >= 1 && n1 <= 64, "request with 2 writable descriptors (32 + 32): used len %ld", n1);
    s64 n2 = read_once(&d, small_b, sizeof(small_b), 1);
    if (n1 > 0 && n2 > 0)
        check(memcmp(small_a, small_b, sizeof(small_a)) != 0, "two 64-byte reads differ");
    u32 st = virtio_status(&d);
    check((st & VIRTIO_STATUS_DRIVER_OK) && !(st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)),
          "device Status 0x%x: DRIVER_OK, no NEEDS_RESET/FAILED", st);

    if (!(cmdline_get_u64("hostile", &v) && v == 0)) {
        int lenient = cmdline_get_u64("hostile_lenient", &v) && v == 1;
        hostile(&d, "readonly", lenient);
        hostile(&d, "oob", lenient);
    }
    virtio_reset(&d);
    return finish();
}
