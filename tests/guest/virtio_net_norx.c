/*
 * virtio_net_norx: the receive queue is starved on purpose.  Negotiates
 * like virtio_net (lib/vnet.h), sets up both queues and DRIVER_OK but
 * posts NO receive buffers, prints "virtio_net_norx: ready" and then,
 * norx_ticks times (default 20), waits tick_polls MMIO reads (default
 * 20000) and prints "virtio_net_norx: tick I/N".  Meanwhile the host may
 * flood the tap: the VMM must keep serving the serial port (and the guest's
 * transmitq: unless norx_tx=0 every tick also sends an ARP request and
 * waits for its tx completion), must not use any receive buffer (there are
 * none: the used ring must stay at 0) and must not flag NEEDS_RESET.
 * Then it posts the receive buffers, sends one more ARP request (so there
 * is traffic even without a flood) and waits (poll_iters polls) for
 * expect_frames frames (default 1; ARP requests for us are answered):
 * "virtio_net_norx: traffic resumed", an "info:" line with the counts, and
 * "virtio_net_norx: PASS" (exit 0); otherwise "FAIL: ..." and
 * "virtio_net_norx: FAIL" (exit 1).
 *
 * Tokens: norx_ticks=N, tick_polls=N, norx_tx=0, expect_frames=N, plus
 * those of lib/vnet.h.
 */
#include "vnet.h"

#define WHO "virtio_net_norx"

static struct vnet net;
static u8 arp_req[ARP_FRAME_LEN];
static u8 frame[VNET_FRAME_MAX];

static int finish(int ok)
{
    if (!ok || net.errors) {
        gprintf(WHO ": FAIL\n");
        return EXIT_FAIL;
    }
    gprintf(WHO ": PASS\n");
    return EXIT_PASS;
}

int guest_main(const struct boot_info *bi)
{
    (void)bi;
    u64 v, ticks = 20, tick_polls = 20000, expect = 1;
    int send_tx = !(cmdline_get_u64("norx_tx", &v) && v == 0);
    cmdline_get_u64("norx_ticks", &ticks);
    cmdline_get_u64("tick_polls", &tick_polls);
    if (cmdline_get_u64("expect_frames", &v) && v > 0)
        expect = v;

    vnet_config(&net, WHO);
    if (vnet_find(&net) || vnet_start(&net, 0, 0))
        return finish(0);
    struct vdev *d = &net.d;
    gprintf(WHO ": device at 0x%lx irq %u, features offered 0x%lx, accepted 0x%lx, rx queue %u, tx queue %u\n",
            d->base, d->irq, d->dev_features, d->drv_features, net.rx->qnum, net.tx->qnum);
    vnet_build_arp(arp_req, ARP_REQUEST, net.mac, net.ip, NULL, net.peer_ip);
    gprintf(WHO ": ready\n");

    for (u64 t = 1; t <= ticks; t++) {
        for (u64 i = 0; i < tick_polls; i++)
            (void)vm_read(d, VIRTIO_MMIO_INTERRUPT_STATUS);
        u32 st = virtio_status(d);
        if (st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) {
            gprintf("FAIL: " WHO ": device Status 0x%x during the starved phase (tick %lu)\n", st, t);
            return finish(0);
        }
        u16 used = ((volatile struct vqn_used *)&net.rx->used)->idx;
        if (used != 0) {
            gprintf("FAIL: " WHO ": rx used idx %u with no receive buffers posted\n", used);
            return finish(0);
        }
        if (send_tx && vnet_send(&net, arp_req, ARP_FRAME_LEN, 1))
            return finish(0);
        gprintf(WHO ": tick %lu/%lu (%u frames sent)\n", t, ticks, net.tx_frames);
    }

    int posted = vnet_post_rx(&net);
    gprintf("info: " WHO ": posted %d receive buffers of %u bytes\n", posted, net.rx_buf_len);
    if (vnet_send(&net, arp_req, ARP_FRAME_LEN, 1))
        return finish(0);
    u32 polls = virtio_poll_iters(), frames = 0, arp_replies = 0, len;
    u8 mac[ETH_ALEN];
    for (u32 i = 0; i < polls && frames < expect; i++) {
        int r = vnet_recv(&net, frame, &len, 1);
        if (r < 0)
            return finish(0);
        if (r == 0)
            continue;
        frames++;
        if (vnet_is_arp_reply(&net, frame, len, mac))
            arp_replies++;
        else
            vnet_answer_arp(&net, frame, len);
    }
    if (frames < expect) {
        gprintf("FAIL: " WHO ": %u of %lu frame(s) within poll_iters after posting receive buffers (Status 0x%x)\n",
                frames, expect, virtio_status(d));
        return finish(0);
    }
    gprintf(WHO ": traffic resumed\n");
    gprintf("info: " WHO ": %u frame(s) (%u bytes), %u ARP reply(ies), %u frames sent\n", net.rx_frames, net.rx_bytes,
            arp_replies, net.tx_frames);
    u32 st = virtio_status(d);
    if (st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) {
        gprintf("FAIL: " WHO ": device Status 0x%x at the end\n", st);
        return finish(0);
    }
    virtio_reset(d);
    return finish(1);
}
