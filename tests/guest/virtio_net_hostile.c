/*
 * virtio_net_hostile: submits one malformed chain (case=NAME, or case=all
 * for every case in turn) on the transmitq or the receiveq of the first
 * virtio-mmio net device (lib/vnet.h layout), then polls Status for
 * DEVICE_NEEDS_RESET (poll_iters polls; 2000 polls after the device used
 * the chain it stops waiting).  After every case the device is reset,
 * re-initialised and checked ("recovered").
 *
 * tx_* cases: the device is initialised with receive buffers posted, the
 * chain goes on the transmitq and is notified.  rx_* cases: the device is
 * initialised WITHOUT receive buffers, the malformed chain is the only
 * receive buffer, and a valid ARP request is sent on the transmitq so the
 * peer's reply makes the device fill it (rx cases need a peer or other
 * incoming traffic; without any, nothing happens: "ignored").
 *
 * Outcomes and what each case accepts.  "hard" cases break the ring
 * itself (2.7.5.3.1: chains must not loop and be no longer than the queue
 * size; 2.7.6/2.7.5: indices below the queue size) or point outside guest
 * memory: there is nothing sensible to do with them, so only
 * DEVICE_NEEDS_RESET passes.  "soft" cases are well-formed rings with a
 * chain the device cannot or need not make sense of; the spec forbids the
 * driver to build them but leaves the device's reaction open, so
 * DEVICE_NEEDS_RESET or "used" (consumed: sent, dropped, or for rx filled
 * with len 0) both pass, and after a use the device must keep working
 * without a reset (an ARP exchange, or just a tx completion without tap=1):
 *
 * | case         | malformation                                        | kind |
 * | tx_loop      | header -> d1 -> d2 -> d1 ...                         | hard |
 * | tx_next_oob  | header's next = queue size                           | hard |
 * | tx_head_oob  | avail ring entry = queue size                        | hard |
 * | tx_addr_oob  | frame descriptor outside guest RAM                   | hard |
 * | tx_indirect  | ARP request in an indirect table, INDIRECT_DESC not negotiated (2.7.5.3.1) | soft |
 * | tx_writable  | readable header + the frame in a device-WRITABLE descriptor (transmit buffers are device-readable, 5.1.6.2) | soft |
 * | tx_short     | one 8-byte readable descriptor (shorter than the 12-byte header, 5.1.6) | soft |
 * | tx_zero_len  | one readable descriptor of length 0                  | soft |
 * | rx_loop      | d0 -> d1 -> d0 ... (writable)                        | hard |
 * | rx_next_oob  | d0's next = queue size                               | hard |
 * | rx_head_oob  | avail ring entry = queue size                        | hard |
 * | rx_addr_oob  | 2048-byte writable buffer outside guest RAM          | hard |
 * | rx_indirect  | 2048-byte buffer in an indirect table, not negotiated | soft |
 * | rx_readable  | one device-READABLE 2048-byte buffer (2.7.4.1: the device MUST NOT write it); a use must have len 0 and the buffer must be unchanged | soft |
 * | rx_short     | one 8-byte writable buffer (smaller than the header, 5.1.6.3.1); a use must have len <= 8, bytes after it unchanged | soft |
 * | rx_zero_len  | one writable buffer of length 0; a use must have len 0 | soft |
 *
 * The address outside RAM is oob_addr=A, else the end of RAM if mem_mib=N
 * is given, else 0x7f0000000000.  hostile_lenient=1 (for QEMU, which
 * bounces accesses outside RAM into nothing, processes indirect tables
 * regardless and leaves buffers it cannot use in the ring) also accepts
 * "used" for hard cases and "ignored" (neither used nor NEEDS_RESET) for
 * all cases.
 *
 * Output per case: "virtio_net_hostile: NAME: needs_reset", "... NAME:
 * used (len N)" (plus "... NAME: works without reset"), "... NAME:
 * ignored" (lenient) or "... NAME: no reset" (fail); then after reset and
 * re-initialisation (an ARP exchange with tap=1, else one tx completion)
 * "virtio_net_hostile: recovered"; always last "virtio_net_hostile: still
 * alive".  Exit 0 when every case passed, 1 otherwise, 2 for a missing or
 * unknown case=.
 *
 * Tokens: case=NAME|all (required), tap=1 (a peer answers ARP for
 * net_peer), hostile_lenient=1, oob_addr=A, mem_mib=N, plus those of
 * lib/vnet.h.
 */
#include "vnet.h"

#define WHO "virtio_net_hostile"

enum { HARD, SOFT };
static const struct {
    const char *name;
    int kind;
} cases[] = {
    {"tx_loop", HARD},     {"tx_next_oob", HARD}, {"tx_head_oob", HARD}, {"tx_addr_oob", HARD},
    {"tx_indirect", SOFT}, {"tx_writable", SOFT}, {"tx_short", SOFT},    {"tx_zero_len", SOFT},
    {"rx_loop", HARD},     {"rx_next_oob", HARD}, {"rx_head_oob", HARD}, {"rx_addr_oob", HARD},
    {"rx_indirect", SOFT}, {"rx_readable", SOFT}, {"rx_short", SOFT},    {"rx_zero_len", SOFT},
};

#define HCOOKIE 0xbad
#define POISON 0x5a
#define GUARD 64

static struct vnet net;
static int tap, lenient;
static struct virtio_net_hdr_v1 hdr __attribute__((aligned(16)));
static u8 arp_req[ARP_FRAME_LEN] __attribute__((aligned(16)));
static u8 hbuf[2048 + GUARD] __attribute__((aligned(64)));
static u8 wbuf[ARP_FRAME_LEN] __attribute__((aligned(16))); /* tx_writable: the device may write it */
static struct vring_desc itab[4] __attribute__((aligned(16)));

static int is(const char *a, const char *b) { return !strcmp(a, b); }

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

static u64 oob_addr(void)
{
    u64 a, mib;
    if (!cmdline_get_u64("oob_addr", &a))
        a = cmdline_get_u64("mem_mib", &mib) ? ram_end() : 0x7f0000000000UL;
    gprintf("info: " WHO ": buffer outside RAM at 0x%lx (end of RAM 0x%lx)\n", a, ram_end());
    return a;
}

/* The device works: with tap=1 an ARP exchange, else one tx completion. */
static int works(void)
{
    if (tap)
        return vnet_arp_resolve(&net, 0);
    return vnet_send(&net, arp_req, ARP_FRAME_LEN, 1);
}

/* Builds the case's chain on q (fresh) and makes it available.
 * Returns the published head (may be the out-of-range one). */
static int build(const char *c, struct vqueue *q)
{
    volatile struct vring_desc *D = q->desc;
    const u16 R = 0, W = 1;
    struct vbuf b[3];
    int n = 0, head;
    u16 publish;
    memset(&hdr, 0, sizeof(hdr));
    memset(hbuf, POISON, sizeof(hbuf));
    if (c[0] == 't') {
        b[n++] = (struct vbuf){(u64)&hdr, VNET_HDR_LEN, R};
        if (is(c, "tx_loop")) {
            b[n++] = (struct vbuf){(u64)arp_req, 21, R};
            b[n++] = (struct vbuf){(u64)arp_req + 21, 21, R};
        } else if (is(c, "tx_addr_oob")) {
            b[n++] = (struct vbuf){oob_addr(), ARP_FRAME_LEN, R};
        } else if (is(c, "tx_writable")) {
            memcpy(wbuf, arp_req, ARP_FRAME_LEN);
            b[n++] = (struct vbuf){(u64)wbuf, ARP_FRAME_LEN, W};
        } else if (is(c, "tx_short")) {
            b[0].len = 8;
        } else if (is(c, "tx_zero_len")) {
            b[0].len = 0;
        } else if (is(c, "tx_indirect")) {
            itab[0] = (struct vring_desc){(u64)&hdr, VNET_HDR_LEN, VRING_DESC_F_NEXT, 1};
            itab[1] = (struct vring_desc){(u64)arp_req, ARP_FRAME_LEN, 0, 0};
            b[0] = (struct vbuf){(u64)itab, 2 * sizeof(struct vring_desc), R};
        } else { /* tx_next_oob, tx_head_oob */
            b[n++] = (struct vbuf){(u64)arp_req, ARP_FRAME_LEN, R};
        }
    } else {
        if (is(c, "rx_loop") || is(c, "rx_next_oob")) {
            b[n++] = (struct vbuf){(u64)hbuf, 1024, W};
            b[n++] = (struct vbuf){(u64)hbuf + 1024, 1024, W};
        } else if (is(c, "rx_addr_oob")) {
            b[n++] = (struct vbuf){oob_addr(), 2048, W};
        } else if (is(c, "rx_readable")) {
            b[n++] = (struct vbuf){(u64)hbuf, 2048, R};
        } else if (is(c, "rx_short")) {
            b[n++] = (struct vbuf){(u64)hbuf, 8, W};
        } else if (is(c, "rx_zero_len")) {
            b[n++] = (struct vbuf){(u64)hbuf, 0, W};
        } else if (is(c, "rx_indirect")) {
            itab[0] = (struct vring_desc){(u64)hbuf, 2048, VRING_DESC_F_WRITE, 0};
            b[n++] = (struct vbuf){(u64)itab, sizeof(struct vring_desc), R};
        } else { /* rx_head_oob */
            b[n++] = (struct vbuf){(u64)hbuf, 2048, W};
        }
    }
    head = vqueue_add(q, b, n, HCOOKIE);
    publish = (u16)head;
    /* Patches on the descriptors the (fresh) queue handed out: 0, 1, 2. */
    if (is(c, "tx_loop")) {
        D[2].flags = VRING_DESC_F_NEXT;
        D[2].next = 1;
    } else if (is(c, "rx_loop")) {
        D[1].flags = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT;
        D[1].next = 0;
    } else if (is(c, "tx_next_oob") || is(c, "rx_next_oob")) {
        D[0].next = q->qnum;
    } else if (is(c, "tx_head_oob") || is(c, "rx_head_oob")) {
        publish = q->qnum;
    } else if (is(c, "tx_indirect") || is(c, "rx_indirect")) {
        D[0].flags = VRING_DESC_F_INDIRECT;
    }
    vqueue_make_avail(q, publish);
    return publish;
}

/* Runs one case; returns 1 if it passed. */
static int run_case(int ci)
{
    const char *c = cases[ci].name;
    int rx = c[0] == 'r', hard = cases[ci].kind == HARD, ok = 1;
    struct vdev *d = &net.d;
    u32 errors0 = net.errors;
    gprintf("info: " WHO ": case %s (%s)\n", c, hard ? "hard: only NEEDS_RESET passes" : "soft");

    if (vnet_start(&net, 0, !rx)) /* resets first */
        return 0;
    struct vqueue *q = rx ? net.rx : net.tx;
    int head = build(c, q);
    vqueue_kick(d, q);
    if (rx) { /* provoke a frame: the peer answers this ARP request */
        struct vbuf b[2] = {{(u64)&hdr, VNET_HDR_LEN, 0}, {(u64)arp_req, ARP_FRAME_LEN, 0}};
        vqueue_post(d, net.tx, b, 2, 0);
    }

    u32 polls = virtio_poll_iters(), grace = 0, id = 0, len = 0;
    int used = 0, reset = 0;
    for (u32 i = 0; i < polls; i++) {
        if (virtio_status(d) & VIRTIO_STATUS_NEEDS_RESET) {
            reset = 1;
            break;
        }
        if (!used) {
            int r = vqueue_get(d, q, &id, &len, NULL);
            if (r)
                used = r == 1 ? 1 : -1;
        }
        if (rx)
            (void)vqueue_get(d, net.tx, NULL, NULL, NULL); /* reap the provoking ARP request */
        if (used && ++grace > 2000)
            break;
    }
    if (used)
        gprintf("info: " WHO ": %s: the device used id %u (published %d) with len %u\n", c, id, head, len);

    /* What the device must not have written. */
    u32 changed = 0, from = is(c, "rx_short") ? 8 : is(c, "rx_readable") || is(c, "rx_zero_len") ? 0 : 2048;
    for (u32 i = from; i < sizeof(hbuf); i++)
        changed += hbuf[i] != POISON;
    if (changed) {
        gprintf("FAIL: " WHO ": %s: the device wrote %u byte(s) it must not write (at offset %u and after)\n", c,
                changed, from);
        ok = 0;
    }

    if (reset) {
        gprintf(WHO ": %s: needs_reset\n", c);
    } else if (used == 1) {
        gprintf(WHO ": %s: used (len %u)\n", c, len);
        if (hard && !lenient) {
            gprintf("FAIL: " WHO ": %s: a hard case must end in DEVICE_NEEDS_RESET\n", c);
            ok = 0;
        }
        u32 maxlen = is(c, "rx_short") ? 8 : is(c, "rx_readable") || is(c, "rx_zero_len") ? 0 : 0xffffffffu;
        if (len > maxlen) {
            gprintf("FAIL: " WHO ": %s: used len %u, at most %u allowed\n", c, len, maxlen);
            ok = 0;
        }
        if (ok) {
            /* The provoking ARP request's completion must not be taken for
             * the next send's. */
            while (vqueue_in_flight(net.tx) && vqueue_wait(d, net.tx, NULL, NULL, NULL, 0) != -1)
                ;
            if (rx)
                vnet_post_rx(&net);
            if (works() == 0) {
                gprintf(WHO ": %s: works without reset\n", c);
            } else {
                gprintf("FAIL: " WHO ": %s: the device used the chain without NEEDS_RESET but no longer works\n", c);
                ok = 0;
            }
        }
    } else if (used == -1) {
        gprintf("FAIL: " WHO ": %s: the device returned used id %u, not the head of a chain in flight\n", c, id);
        ok = 0;
    } else if (lenient) {
        gprintf(WHO ": %s: ignored\n", c);
    } else {
        gprintf("info: " WHO ": device Status 0x%x\n", virtio_status(d));
        gprintf(WHO ": %s: no reset\n", c);
        ok = 0;
    }

    /* Recovery: reset, full re-initialisation, the device works. */
    if (virtio_reset(d)) {
        gprintf("FAIL: " WHO ": %s: Status 0x%x after writing 0 (reset)\n", c, virtio_status(d));
        return 0;
    }
    if (vnet_start(&net, 0, 1))
        return 0;
    if (works()) {
        gprintf("FAIL: " WHO ": %s: the device does not work after reset and re-initialisation%s\n", c,
                tap ? " (no ARP reply)" : "");
        return 0;
    }
    gprintf(WHO ": recovered\n");
    return ok && net.errors == errors0;
}

int guest_main(const struct boot_info *bi)
{
    (void)bi;
    u64 v;
    size_t clen;
    const char *cv = cmdline_get("case", &clen);
    char c[32];
    int ci = -1, all = 0;
    if (cv && clen < sizeof(c)) {
        memcpy(c, cv, clen);
        c[clen] = 0;
        all = is(c, "all");
        for (int i = 0; i < (int)ARRAY_SIZE(cases); i++)
            if (is(c, cases[i].name))
                ci = i;
    }
    if (ci < 0 && !all) {
        gprintf("FAIL: " WHO ": missing or unknown case= (all or one of:");
        for (int i = 0; i < (int)ARRAY_SIZE(cases); i++)
            gprintf(" %s", cases[i].name);
        gprintf(")\n");
        return EXIT_USAGE;
    }
    tap = cmdline_get_u64("tap", &v) && v == 1;
    lenient = cmdline_get_u64("hostile_lenient", &v) && v == 1;

    vnet_config(&net, WHO);
    if (vnet_find(&net))
        return EXIT_FAIL;
    gprintf("info: " WHO ": device at 0x%lx irq %u%s%s\n", net.d.base, net.d.irq, tap ? ", tap peer" : "",
            lenient ? ", lenient" : "");
    if (vnet_start(&net, 0, 1))
        return EXIT_FAIL;
    vnet_build_arp(arp_req, ARP_REQUEST, net.mac, net.ip, NULL, net.peer_ip);

    int failed = 0;
    for (int i = 0; i < (int)ARRAY_SIZE(cases); i++)
        if (all || i == ci)
            if (!run_case(i)) {
                failed++;
                if (all)
                    gprintf("info: " WHO ": case %s FAILED\n", cases[i].name);
            }
    if (all)
        gprintf("info: " WHO ": %d of %d cases failed\n", failed, (int)ARRAY_SIZE(cases));
    virtio_reset(&net.d);
    gprintf(WHO ": still alive\n");
    return failed ? EXIT_FAIL : EXIT_PASS;
}
