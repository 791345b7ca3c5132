/*
 * virtio_net: drives the first virtio-mmio network device (DeviceID 1)
 * announced on the cmdline with well-formed traffic against a peer at
 * 10.0.2.1 (the host end of a tap):
 *   1. negotiates VERSION_1 + MAC + STATUS (+ MRG_RXBUF when offered, unless
 *      mrg_rxbuf=0); prints the MAC (from the config space, else the fixed
 *      52:54:00:12:34:56) and the link status;
 *   2. posts rx buffers (before DRIVER_OK, notified after it), sends an ARP
 *      request "who-has 10.0.2.1 tell 10.0.2.15" (header and frame in two
 *      descriptors) and waits for the reply, skipping other frames (IPv6
 *      router solicitations, MLD, ...) and answering ARP requests for
 *      10.0.2.15;
 *   3. sends net_count ICMP echo requests (header + frame in one
 *      descriptor, IP and ICMP checksums computed), each waiting for the
 *      echo reply with the same id/seq and payload (its IP and ICMP
 *      checksums are verified), and prints the round trip in TSC cycles.
 * See lib/vnet.h for the frame/header layout and the shared tokens.
 *
 * Output: "virtio_net: device at ...", "virtio_net: mac M (from device |
 * fixed)", "virtio_net: link up" / "link down" / "link status not
 * offered", "virtio_net: arp reply from M", one "virtio_net: ping reply
 * seq=S rtt=C cycles" per ping, "virtio_net: rtt median C cycles (min A,
 * max B, N pings)", then "virtio_net: PASS" (exit 0) or "FAIL: ..." lines
 * and "virtio_net: FAIL" (exit 1).  Exit 2 on a bad net_count/ping_size.
 *
 * Tokens: net_count=N (1..1000, default 1), ping_size=N (ICMP payload
 * bytes, 0..1472, default 56), plus those of lib/vnet.h.
 */
#include "vnet.h"

#define WHO "virtio_net"
#define MAX_PINGS 1000
#define ICMP_ID 0x7e57
#define IP_PROTO_ICMP 1

static struct vnet net;
static u8 tx_frame[VNET_FRAME_MAX];
static u8 rx_frame[VNET_FRAME_MAX];
static u64 rtts[MAX_PINGS];
static u16 ip_id = 1;

static int finish(int ok)
{
    if (!ok || net.errors) {
        gprintf(WHO ": FAIL\n");
        return EXIT_FAIL;
    }
    gprintf(WHO ": PASS\n");
    return EXIT_PASS;
}

static u8 payload_byte(u16 seq, u32 i) { return (u8)(seq * 7 + i); }

/* Ethernet + IPv4 + ICMP echo request; returns the frame length. */
static u32 build_echo(u8 *f, u16 seq, u32 psize)
{
    memcpy(f, net.peer_mac, ETH_ALEN);
    memcpy(f + 6, net.mac, ETH_ALEN);
    put_be16(f + 12, ETHERTYPE_IPV4);
    u8 *ip = f + ETH_HLEN, *icmp = ip + 20;
    u32 icmp_len = 8 + psize;
    ip[0] = 0x45; /* version 4, 5-word header */
    ip[1] = 0;
    put_be16(ip + 2, (u16)(20 + icmp_len));
    put_be16(ip + 4, ip_id++);
    put_be16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = IP_PROTO_ICMP;
    put_be16(ip + 10, 0);
    put_be32(ip + 12, net.ip);
    put_be32(ip + 16, net.peer_ip);
    put_be16(ip + 10, inet_csum(ip, 20));
    icmp[0] = 8; /* echo request */
    icmp[1] = 0;
    put_be16(icmp + 2, 0);
    put_be16(icmp + 4, ICMP_ID);
    put_be16(icmp + 6, seq);
    for (u32 i = 0; i < psize; i++)
        icmp[8 + i] = payload_byte(seq, i);
    put_be16(icmp + 2, inet_csum(icmp, icmp_len));
    return ETH_HLEN + 20 + icmp_len;
}

/* 1: the echo reply for seq (validated: 0 wrong, FAIL printed); -1 another frame. */
static int check_echo_reply(const u8 *f, u32 len, u16 seq, u32 psize)
{
    if (len < ETH_HLEN + 20 || get_be16(f + 12) != ETHERTYPE_IPV4)
        return -1;
    const u8 *ip = f + ETH_HLEN;
    u32 ihl = (ip[0] & 0xf) * 4u;
    if ((ip[0] >> 4) != 4 || ihl < 20 || ip[9] != IP_PROTO_ICMP || get_be32(ip + 12) != net.peer_ip ||
        get_be32(ip + 16) != net.ip)
        return -1;
    u32 tot = get_be16(ip + 2);
    if (tot < ihl + 8 || ETH_HLEN + tot > len)
        return -1;
    const u8 *icmp = ip + ihl;
    u32 icmp_len = tot - ihl;
    if (icmp[0] != 0 || get_be16(icmp + 4) != ICMP_ID || get_be16(icmp + 6) != seq)
        return -1;
    int ok = 1;
    if (memcmp(f, net.mac, ETH_ALEN) || memcmp(f + 6, net.peer_mac, ETH_ALEN)) {
        gprintf("FAIL: " WHO ": echo reply seq %u: MAC addresses do not match the ARP exchange\n", seq);
        ok = 0;
    }
    if (inet_csum(ip, ihl) != 0) {
        gprintf("FAIL: " WHO ": echo reply seq %u: bad IP header checksum 0x%x\n", seq, get_be16(ip + 10));
        ok = 0;
    }
    if (inet_csum(icmp, icmp_len) != 0) {
        gprintf("FAIL: " WHO ": echo reply seq %u: bad ICMP checksum 0x%x\n", seq, get_be16(icmp + 2));
        ok = 0;
    }
    if (icmp[1] != 0 || icmp_len != 8 + psize) {
        gprintf("FAIL: " WHO ": echo reply seq %u: code %u, ICMP length %u (sent %u)\n", seq, icmp[1], icmp_len,
                8 + psize);
        ok = 0;
    }
    for (u32 i = 0; ok && i < psize; i++)
        if (icmp[8 + i] != payload_byte(seq, i)) {
            gprintf("FAIL: " WHO ": echo reply seq %u: payload byte %u is 0x%x, sent 0x%x\n", seq, i, icmp[8 + i],
                    payload_byte(seq, i));
            ok = 0;
        }
    return ok;
}

static void sort_u64(u64 *a, u32 n)
{
    for (u32 i = 1; i < n; i++) {
        u64 v = a[i];
        u32 j = i;
        for (; j > 0 && a[j - 1] > v; j--)
            a[j] = a[j - 1];
        a[j] = v;
    }
}

int guest_main(const struct boot_info *bi)
{
    (void)bi;
    u64 count = 1, psize = 56;
    size_t tl;
    if (cmdline_get("net_count", &tl) && (!cmdline_get_u64("net_count", &count) || count < 1 || count > MAX_PINGS)) {
        gprintf("FAIL: " WHO ": net_count= must be 1..%u\n", MAX_PINGS);
        return EXIT_USAGE;
    }
    if (cmdline_get("ping_size", &tl) && (!cmdline_get_u64("ping_size", &psize) || psize > 1472)) {
        gprintf("FAIL: " WHO ": ping_size= must be 0..1472\n");
        return EXIT_USAGE;
    }

    vnet_config(&net, WHO);
    if (vnet_find(&net))
        return finish(0);
    if (vnet_start(&net, 0, 1))
        return finish(0);
    struct vdev *d = &net.d;
    gprintf(WHO ": device at 0x%lx irq %u, features offered 0x%lx, accepted 0x%lx\n", d->base, d->irq,
            d->dev_features, d->drv_features);
    gprintf("info: MRG_RXBUF %s, rx queue %u (QueueNumMax %u) with %u-byte buffers, tx queue %u (QueueNumMax %u)\n",
            net.mrg ? "negotiated" : "not negotiated", net.rx->qnum, net.rx->qmax, net.rx_buf_len, net.tx->qnum,
            net.tx->qmax);
    gprintf(WHO ": mac ");
    print_mac(net.mac);
    gprintf(net.mac_from_device ? " (from device)\n" : " (fixed, VIRTIO_NET_F_MAC not offered)\n");
    if (net.has_status)
        gprintf(WHO ": link %s (status 0x%x)\n", net.status & VIRTIO_NET_S_LINK_UP ? "up" : "down", net.status);
    else
        gprintf(WHO ": link status not offered\n");

    if (vnet_arp_resolve(&net, 0)) {
        gprintf("FAIL: " WHO ": no ARP reply from ");
        print_ip(net.peer_ip);
        gprintf(" within poll_iters (%u rx frames, %u other; Status 0x%x)\n", net.rx_frames, net.rx_other,
                virtio_status(d));
        return finish(0);
    }
    gprintf(WHO ": arp reply from ");
    print_mac(net.peer_mac);
    gprintf("\n");
    if (net.rx_other)
        gprintf("info: skipped %u other frame(s) before the ARP reply\n", net.rx_other);

    u32 polls = virtio_poll_iters();
    for (u16 seq = 1; seq <= count; seq++) {
        u32 len = build_echo(tx_frame, seq, (u32)psize), rlen;
        u64 t0 = rdtsc_ordered();
        if (vnet_send(&net, tx_frame, len, 0))
            return finish(0);
        int got = 0;
        for (u32 i = 0; i < polls && !got; i++) {
            int r = vnet_recv(&net, rx_frame, &rlen, 1);
            if (r < 0)
                return finish(0);
            if (r == 0)
                continue;
            int e = check_echo_reply(rx_frame, rlen, seq, (u32)psize);
            if (e == 0)
                return finish(0);
            if (e == 1)
                got = 1;
            else if (!vnet_answer_arp(&net, rx_frame, rlen))
                net.rx_other++;
        }
        if (!got) {
            gprintf("FAIL: " WHO ": no echo reply for seq %u within poll_iters (Status 0x%x)\n", seq,
                    virtio_status(d));
            return finish(0);
        }
        rtts[seq - 1] = net.last_rx_tsc - t0;
        gprintf(WHO ": ping reply seq=%u rtt=%lu cycles%s\n", seq, rtts[seq - 1],
                net.last_nbufs > 1 ? " (merged rx buffers)" : "");
    }
    sort_u64(rtts, (u32)count);
    gprintf(WHO ": rtt median %lu cycles (min %lu, max %lu, %lu pings)\n", rtts[(count - 1) / 2], rtts[0],
            rtts[count - 1], count);
    gprintf("info: %u frames received (%u bytes, %u skipped), %u sent, %u warning(s)\n", net.rx_frames,
            net.rx_bytes, net.rx_other, net.tx_frames, net.warnings);
    u32 st = virtio_status(d);
    if ((st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) || !(st & VIRTIO_STATUS_DRIVER_OK)) {
        gprintf("FAIL: " WHO ": device Status 0x%x at the end\n", st);
        return finish(0);
    }
    virtio_reset(d);
    return finish(1);
}
