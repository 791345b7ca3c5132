/* virtio-net helpers for the test guests: see vnet.h. */
#include "vnet.h"

static struct vqueue vnet_rxq, vnet_txq;
static u8 vnet_rx_mem[VQN_MAX][VNET_BUF_SIZE] __attribute__((aligned(64)));
/* tx: header immediately followed by the frame (one-descriptor layout). */
static struct {
    struct virtio_net_hdr_v1 hdr;
    u8 frame[VNET_FRAME_MAX];
} __attribute__((packed)) vnet_tx_mem __attribute__((aligned(64)));

static const u8 fallback_mac[ETH_ALEN] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

static void warn(struct vnet *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct vnet *n, const char *fmt, ...)
{
    va_list ap;
    serial_puts(n->strict ? "FAIL: " : "warn: ");
    serial_puts(n->who);
    serial_puts(": ");
    va_start(ap, fmt);
    gvprintf(fmt, ap);
    va_end(ap);
    serial_putc('\n');
    n->warnings++;
    if (n->strict)
        n->errors++;
}

static void fail(struct vnet *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct vnet *n, const char *fmt, ...)
{
    va_list ap;
    serial_puts("FAIL: ");
    serial_puts(n->who);
    serial_puts(": ");
    va_start(ap, fmt);
    gvprintf(fmt, ap);
    va_end(ap);
    serial_putc('\n');
    n->errors++;
}

u16 inet_csum(const void *p, u32 len)
{
    const u8 *b = p;
    u64 sum = 0;
    for (u32 i = 0; i + 1 < len; i += 2)
        sum += (u32)(b[i] << 8 | b[i + 1]);
    if (len & 1)
        sum += (u32)b[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (u16)~sum;
}

void print_mac(const u8 *m)
{
    gprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

void print_ip(u32 ip) { gprintf("%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff); }

int cmdline_get_ip(const char *key, u32 *ip)
{
    size_t len;
    const char *v = cmdline_get(key, &len);
    u32 out = 0;
    int parts = 0;
    if (!v)
        return 0;
    for (size_t i = 0; i <= len && parts < 4;) {
        size_t j = i;
        u64 x;
        while (j < len && v[j] != '.')
            j++;
        if (j == i || !parse_u64(v + i, j - i, &x) || x > 255)
            return 0;
        out = out << 8 | (u32)x;
        parts++;
        i = j + 1;
    }
    if (parts != 4)
        return 0;
    *ip = out;
    return 1;
}

void vnet_config(struct vnet *n, const char *who)
{
    u64 v;
    memset(n, 0, sizeof(*n));
    n->who = who;
    n->rx = &vnet_rxq;
    n->tx = &vnet_txq;
    n->want_mrg = !(cmdline_get_u64("mrg_rxbuf", &v) && v == 0);
    n->rx_buf_len = VNET_BUF_SIZE;
    if (cmdline_get_u64("rx_buf", &v))
        n->rx_buf_len = v < VNET_HDR_LEN ? VNET_HDR_LEN : v > VNET_BUF_SIZE ? VNET_BUF_SIZE : (u32)v;
    n->rx_qnum_want = VQN_MAX;
    if (cmdline_get_u64("rx_queue", &v) && v > 0 && v <= VQN_MAX)
        n->rx_qnum_want = (u16)v;
    n->tx_qnum_want = 16;
    if (cmdline_get_u64("tx_queue", &v) && v > 0 && v <= VQN_MAX)
        n->tx_qnum_want = (u16)v;
    n->strict = cmdline_get_u64("strict", &v) && v == 1;
    if (!cmdline_get_ip("net_ip", &n->ip))
        n->ip = IP4(10, 0, 2, 15);
    if (!cmdline_get_ip("net_peer", &n->peer_ip))
        n->peer_ip = IP4(10, 0, 2, 1);
}

int vnet_find(struct vnet *n)
{
    u64 index = 0;
    cmdline_get_u64("net_index", &index);
    if (virtio_find(VIRTIO_ID_NET, (int)index, &n->d, n->who)) {
        gprintf("FAIL: %s: no virtio-mmio net device #%lu on the cmdline (cmdline: \"%s\")\n", n->who, index,
                g_boot.cmdline);
        return -1;
    }
    return 0;
}

u16 vnet_read_status(struct vnet *n)
{
    if (n->has_status)
        n->status = virtio_cfg_read16(&n->d, VIRTIO_NET_CFG_STATUS);
    return n->status;
}

static void read_config(struct vnet *n)
{
    for (int tries = 0; tries < 16; tries++) {
        u32 g = virtio_cfg_generation(&n->d);
        if (n->mac_from_device)
            for (int i = 0; i < ETH_ALEN; i++)
                n->mac[i] = virtio_cfg_read8(&n->d, VIRTIO_NET_CFG_MAC + i);
        vnet_read_status(n);
        if (virtio_cfg_generation(&n->d) == g)
            break;
    }
}

int vnet_post_rx(struct vnet *n)
{
    int posted = 0;
    for (u32 i = 0; i < VQN_MAX && n->rx->nfree > 0; i++) {
        if (n->rx_posted[i])
            continue;
        struct vbuf b = {(u64)vnet_rx_mem[i], n->rx_buf_len, 1};
        memset(vnet_rx_mem[i], 0xee, VNET_HDR_LEN); /* shows a header field the device left unset */
        int head = vqueue_add(n->rx, &b, 1, i);
        if (head < 0)
            break;
        vqueue_make_avail(n->rx, (u16)head);
        n->rx_posted[i] = 1;
        posted++;
    }
    if (posted && n->live)
        vqueue_kick(&n->d, n->rx);
    return posted;
}

int vnet_start(struct vnet *n, u64 extra, int post_rx)
{
    struct vdev *d = &n->d;
    u64 want = FEAT(VIRTIO_NET_F_MAC) | FEAT(VIRTIO_NET_F_STATUS) | extra;
    if (n->want_mrg)
        want |= FEAT(VIRTIO_NET_F_MRG_RXBUF);
    if (virtio_negotiate(d, want, n->who))
        return -1;
    n->mrg = !!(d->drv_features & FEAT(VIRTIO_NET_F_MRG_RXBUF));
    n->has_status = !!(d->drv_features & FEAT(VIRTIO_NET_F_STATUS));
    n->mac_from_device = !!(d->drv_features & FEAT(VIRTIO_NET_F_MAC));
    if (!n->mac_from_device)
        memcpy(n->mac, fallback_mac, ETH_ALEN);
    n->status = VIRTIO_NET_S_LINK_UP;
    if (!n->mrg && n->rx_buf_len < VNET_MIN_RX_NOMRG) {
        gprintf("info: %s: rx_buf %u raised to %u (MRG_RXBUF not negotiated)\n", n->who, n->rx_buf_len,
                VNET_MIN_RX_NOMRG);
        n->rx_buf_len = VNET_MIN_RX_NOMRG;
    }
    if (virtio_setup_queue_n(d, VNET_RXQ, n->rx, n->rx_qnum_want, n->who) ||
        virtio_setup_queue_n(d, VNET_TXQ, n->tx, n->tx_qnum_want, n->who)) {
        vm_write(d, VIRTIO_MMIO_STATUS, virtio_status(d) | VIRTIO_STATUS_FAILED);
        return -1;
    }
    read_config(n);
    memset(n->rx_posted, 0, sizeof(n->rx_posted));
    n->live = 0;
    if (post_rx)
        vnet_post_rx(n); /* no notify before DRIVER_OK (3.1.1) */
    if (virtio_driver_ok_check(d, n->who))
        return -1;
    n->live = 1;
    if (post_rx)
        vqueue_kick(d, n->rx);
    return 0;
}

int vnet_send(struct vnet *n, const void *frame, u32 len, int split)
{
    struct vbuf b[2];
    int nb;
    u32 id, ulen;
    if (len > VNET_FRAME_MAX) {
        fail(n, "frame of %u bytes too long to send", len);
        return -1;
    }
    memset(&vnet_tx_mem.hdr, 0, sizeof(vnet_tx_mem.hdr));
    memcpy(vnet_tx_mem.frame, frame, len);
    if (split) {
        b[0] = (struct vbuf){(u64)&vnet_tx_mem.hdr, VNET_HDR_LEN, 0};
        b[1] = (struct vbuf){(u64)vnet_tx_mem.frame, len, 0};
        nb = 2;
    } else {
        b[0] = (struct vbuf){(u64)&vnet_tx_mem, VNET_HDR_LEN + len, 0};
        nb = 1;
    }
    int head = vqueue_post(&n->d, n->tx, b, nb, 0);
    if (head < 0) {
        fail(n, "no free tx descriptors (%u in flight)", vqueue_in_flight(n->tx));
        return -1;
    }
    int r = vqueue_wait(&n->d, n->tx, &id, &ulen, NULL, 0);
    if (r == -1) {
        fail(n, "tx of %u bytes not completed within poll_iters (Status 0x%x)", len, virtio_status(&n->d));
        return -1;
    }
    if (r == -2 || id != (u32)head) {
        fail(n, "tx completion with id %u, expected head %d", id, head);
        return -1;
    }
    if (ulen != 0)
        warn(n, "tx used len %u (the device writes nothing on the transmitq, expected 0)", ulen);
    n->tx_frames++;
    return 0;
}

/* Takes rx buffer `cookie` back from the device (checks what came back). */
static int rx_take(struct vnet *n, u32 id, u64 cookie, u32 len, const char *what)
{
    (void)id;
    if (cookie >= VQN_MAX || !n->rx_posted[cookie]) {
        fail(n, "rx %s: used element for buffer %lu that was not posted", what, cookie);
        return -1;
    }
    n->rx_posted[cookie] = 0;
    if (len > n->rx_buf_len) {
        fail(n, "rx %s: used len %u > buffer size %u", what, len, n->rx_buf_len);
        return -1;
    }
    return 0;
}

int vnet_recv(struct vnet *n, u8 *f, u32 *out_len, u32 polls)
{
    struct vdev *d = &n->d;
    u32 id, len, total = 0;
    u64 ck;
    if (!polls)
        polls = virtio_poll_iters();
    int r = vqueue_wait(d, n->rx, &id, &len, &ck, polls);
    if (r == -1)
        return 0;
    n->last_rx_tsc = rdtsc_ordered();
    if (r == -2) {
        fail(n, "rx used element with id %u that is not a posted buffer", id);
        return -1;
    }
    if (rx_take(n, id, ck, len, "first buffer"))
        return -1;
    if (len < VNET_HDR_LEN) {
        fail(n, "rx used len %u shorter than the %u-byte header", len, VNET_HDR_LEN);
        vnet_post_rx(n);
        return -1;
    }
    memcpy(&n->last_hdr, vnet_rx_mem[ck], VNET_HDR_LEN);
    u32 nb = 1, hnb = n->last_hdr.num_buffers;
    if (n->mrg) {
        if (hnb == 0 || hnb > n->rx->qnum) {
            fail(n, "rx num_buffers %u (queue size %u)", hnb, n->rx->qnum);
            vnet_post_rx(n);
            return -1;
        }
        nb = hnb;
    } else if (hnb != 1 && !n->nb_warned++) {
        warn(n, "rx num_buffers %u without MRG_RXBUF (the device must set 1; reported once)", hnb);
    }
    n->last_nbufs = nb;
    total = len - VNET_HDR_LEN;
    memcpy(f, vnet_rx_mem[ck] + VNET_HDR_LEN, total);
    for (u32 k = 1; k < nb; k++) {
        r = vqueue_wait(d, n->rx, &id, &len, &ck, 0);
        if (r) {
            fail(n, "rx: buffer %u of %u of a merged frame %s", k + 1, nb, r == -1 ? "never came" : "bad id");
            vnet_post_rx(n);
            return -1;
        }
        if (rx_take(n, id, ck, len, "merged buffer"))
            return -1;
        if (total + len > VNET_FRAME_MAX) {
            fail(n, "rx merged frame longer than %u bytes", VNET_FRAME_MAX);
            vnet_post_rx(n);
            return -1;
        }
        memcpy(f + total, vnet_rx_mem[ck], len);
        total += len;
    }
    vnet_post_rx(n);
    if (n->last_hdr.flags != 0 || n->last_hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE)
        fail(n, "rx header flags 0x%x gso_type %u (no offloads negotiated: both must be 0)", n->last_hdr.flags,
             n->last_hdr.gso_type);
    if (total < ETH_HLEN) {
        fail(n, "rx frame of %u bytes (shorter than an Ethernet header)", total);
        return -1;
    }
    n->rx_frames++;
    n->rx_bytes += total;
    *out_len = total;
    return 1;
}

u32 vnet_build_arp(u8 *f, u16 oper, const u8 *sha, u32 spa, const u8 *dst, u32 tpa)
{
    static const u8 bcast[ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    memcpy(f, dst ? dst : bcast, ETH_ALEN);
    memcpy(f + 6, sha, ETH_ALEN);
    put_be16(f + 12, ETHERTYPE_ARP);
    u8 *a = f + ETH_HLEN;
    put_be16(a + 0, 1);              /* htype Ethernet */
    put_be16(a + 2, ETHERTYPE_IPV4); /* ptype */
    a[4] = ETH_ALEN;
    a[5] = 4;
    put_be16(a + 6, oper);
    memcpy(a + 8, sha, ETH_ALEN);
    put_be32(a + 14, spa);
    if (dst)
        memcpy(a + 18, dst, ETH_ALEN);
    else
        memset(a + 18, 0, ETH_ALEN);
    put_be32(a + 24, tpa);
    return ARP_FRAME_LEN;
}

/* Parses an Ethernet/IPv4 ARP packet. */
static int parse_arp(const u8 *f, u32 len, u16 *oper, const u8 **sha, u32 *spa, u32 *tpa)
{
    if (len < ARP_FRAME_LEN || get_be16(f + 12) != ETHERTYPE_ARP)
        return 0;
    const u8 *a = f + ETH_HLEN;
    if (get_be16(a) != 1 || get_be16(a + 2) != ETHERTYPE_IPV4 || a[4] != ETH_ALEN || a[5] != 4)
        return 0;
    *oper = get_be16(a + 6);
    *sha = a + 8;
    *spa = get_be32(a + 14);
    *tpa = get_be32(a + 24);
    return 1;
}

int vnet_is_arp_reply(const struct vnet *n, const u8 *f, u32 len, u8 *sha)
{
    u16 op;
    const u8 *s;
    u32 spa, tpa;
    if (!parse_arp(f, len, &op, &s, &spa, &tpa) || op != ARP_REPLY || spa != n->peer_ip || tpa != n->ip)
        return 0;
    if (memcmp(f, n->mac, ETH_ALEN)) /* replies are unicast to us */
        return 0;
    memcpy(sha, s, ETH_ALEN);
    return 1;
}

int vnet_answer_arp(struct vnet *n, const u8 *f, u32 len)
{
    static u8 reply[ARP_FRAME_LEN];
    u16 op;
    const u8 *sha;
    u32 spa, tpa;
    if (!parse_arp(f, len, &op, &sha, &spa, &tpa) || op != ARP_REQUEST || tpa != n->ip)
        return 0;
    u8 who[ETH_ALEN];
    memcpy(who, sha, ETH_ALEN);
    vnet_build_arp(reply, ARP_REPLY, n->mac, n->ip, who, spa);
    gprintf("info: %s: answering ARP who-has ", n->who);
    print_ip(tpa);
    gprintf(" from ");
    print_mac(who);
    gprintf("\n");
    vnet_send(n, reply, ARP_FRAME_LEN, 0);
    return 1;
}

int vnet_arp_resolve(struct vnet *n, u32 polls)
{
    static u8 req[ARP_FRAME_LEN];
    static u8 f[VNET_FRAME_MAX];
    u32 len;
    vnet_build_arp(req, ARP_REQUEST, n->mac, n->ip, NULL, n->peer_ip);
    if (vnet_send(n, req, ARP_FRAME_LEN, 1))
        return -1;
    if (!polls)
        polls = virtio_poll_iters();
    for (u32 i = 0; i < polls; i++) {
        int r = vnet_recv(n, f, &len, 1);
        if (r < 0)
            return -1;
        if (r == 0)
            continue;
        if (vnet_is_arp_reply(n, f, len, n->peer_mac)) {
            n->peer_known = 1;
            return 0;
        }
        if (!vnet_answer_arp(n, f, len))
            n->rx_other++;
    }
    return -1;
}
