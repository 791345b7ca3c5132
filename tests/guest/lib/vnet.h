/*
 * virtio-net helpers for the virtio_net* test guests (VIRTIO 1.2 5.1), on
 * top of the multi-queue API of virtio_mmio.h.
 *
 * Layout the guests use and expect (VERSION_1, so every frame is preceded
 * by the 12-byte struct virtio_net_hdr_v1, num_buffers included):
 *  - queue 0 = receiveq1, queue 1 = transmitq1 (no MQ, no control queue);
 *  - rx: one device-writable descriptor per buffer, rx_buf bytes each
 *    (default 2048), header and frame in the same buffer.  With
 *    VIRTIO_NET_F_MRG_RXBUF negotiated (default when offered) a frame may
 *    span num_buffers buffers (the header only in the first); without it
 *    each frame must fit one buffer (rx_buf is then at least 1526) and
 *    num_buffers should read 1;
 *  - tx: header + frame, either in one descriptor (contiguous) or split
 *    into a 12-byte header descriptor and a frame descriptor; all header
 *    fields 0 (no offloads negotiated); frames are not padded to 60 bytes.
 * No offload features (CSUM, GUEST_CSUM, TSO, ...) are negotiated, so
 * received headers must have flags 0 and gso_type NONE.
 *
 * Cmdline tokens (all net guests): net_index=N (N-th net device),
 * mrg_rxbuf=0 (do not accept MRG_RXBUF), rx_buf=N (rx buffer size,
 * 12..2048), rx_queue=N / tx_queue=N (queue sizes, default 64 / 16, capped
 * by QueueNumMax), net_ip=A.B.C.D (default 10.0.2.15), net_peer=A.B.C.D
 * (default 10.0.2.1), strict=1 (tolerated deviations, "warn:" lines,
 * become failures), poll_iters=N.
 */
#ifndef TEST_GUEST_VNET_H
#define TEST_GUEST_VNET_H

#include "virtio_mmio.h"

#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_MQ 22
#define VIRTIO_NET_S_LINK_UP 1
#define VIRTIO_NET_S_ANNOUNCE 2
#define VIRTIO_NET_CFG_MAC 0    /* u8[6] */
#define VIRTIO_NET_CFG_STATUS 6 /* le16 */
#define VIRTIO_NET_CFG_MTU 10   /* le16 */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_GSO_NONE 0

struct virtio_net_hdr_v1 {
    u8 flags;
    u8 gso_type;
    u16 hdr_len;
    u16 gso_size;
    u16 csum_start;
    u16 csum_offset;
    u16 num_buffers;
} __attribute__((packed));
#define VNET_HDR_LEN 12

#define VNET_RXQ 0
#define VNET_TXQ 1
#define VNET_BUF_SIZE 2048  /* size of each rx buffer slot */
#define VNET_FRAME_MAX 2048 /* largest frame vnet_recv() reassembles */
#define VNET_MIN_RX_NOMRG 1526

#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP 0x0806
#define ARP_FRAME_LEN 42
#define ARP_REQUEST 1
#define ARP_REPLY 2
#define IP4(a, b, c, d) (((u32)(a) << 24) | ((u32)(b) << 16) | ((u32)(c) << 8) | (u32)(d))

struct vnet {
    struct vdev d;
    struct vqueue *rx, *tx;
    const char *who;
    u8 mac[ETH_ALEN];
    int mac_from_device;
    int mrg;        /* VIRTIO_NET_F_MRG_RXBUF negotiated */
    int has_status; /* VIRTIO_NET_F_STATUS negotiated */
    u16 status;     /* config status (LINK_UP assumed without STATUS) */
    u32 rx_buf_len;
    u16 rx_qnum_want, tx_qnum_want;
    int want_mrg;
    int strict;
    u32 ip, peer_ip; /* host order */
    u8 peer_mac[ETH_ALEN];
    int peer_known;
    u8 rx_posted[VQN_MAX]; /* rx buffer i is in the queue */
    int live;              /* DRIVER_OK set: posting rx buffers notifies */
    struct virtio_net_hdr_v1 last_hdr;
    u32 last_nbufs;
    u64 last_rx_tsc; /* TSC when vnet_recv() saw the frame's first buffer */
    u32 nb_warned;
    /* counters */
    u32 rx_frames, rx_bytes, rx_other, tx_frames, warnings, errors;
};

/* Reads the cmdline tokens above into n (who = message prefix). */
void vnet_config(struct vnet *n, const char *who);
/* The net_index-th net device. 0 ok, -1 none (FAIL line printed). */
int vnet_find(struct vnet *n);
/* Reset, negotiate VERSION_1 + MAC + STATUS (+ MRG_RXBUF unless
 * mrg_rxbuf=0, + extra), queues 0 and 1, read MAC and status, post rx
 * buffers if post_rx (before DRIVER_OK, notified after), DRIVER_OK.
 * 0 ok, -1 (FAIL line printed). */
int vnet_start(struct vnet *n, u64 extra, int post_rx);
/* Rereads the status field (when negotiated). */
u16 vnet_read_status(struct vnet *n);
/* Posts every rx buffer that is not in the queue yet (while descriptors
 * are free) and notifies.  Returns the number posted. */
int vnet_post_rx(struct vnet *n);
/* Sends a frame (header all zero): split = header and frame in separate
 * descriptors, else one.  Waits for the tx completion (poll_iters).
 * 0 ok, -1 timeout / bad id (FAIL line printed). */
int vnet_send(struct vnet *n, const void *frame, u32 len, int split);
/* Receives one frame into f (VNET_FRAME_MAX bytes), polling up to polls
 * times (0: poll_iters).  Reposts the buffers.  1 frame (*len set), 0
 * nothing within polls, -1 protocol error (FAIL line printed). */
int vnet_recv(struct vnet *n, u8 *f, u32 *len, u32 polls);
/* Answers an ARP request for n->ip; 1 if f was one (handled), else 0. */
int vnet_answer_arp(struct vnet *n, const u8 *f, u32 len);
/* Sends "who-has peer tell ip" and waits (polls) for the reply, skipping
 * and counting other frames.  0 ok (n->peer_mac set), -1 timeout/error. */
int vnet_arp_resolve(struct vnet *n, u32 polls);
/* Builds an ARP frame (42 bytes); dst NULL = broadcast, tha zero. */
u32 vnet_build_arp(u8 *f, u16 oper, const u8 *sha, u32 spa, const u8 *dst, u32 tpa);
/* 1 if f is an ARP reply from n->peer_ip to n->ip (sender MAC in sha). */
int vnet_is_arp_reply(const struct vnet *n, const u8 *f, u32 len, u8 *sha);

/* Big-endian (network order) accessors and the Internet checksum. */
static inline void put_be16(u8 *p, u16 v) { p[0] = (u8)(v >> 8); p[1] = (u8)v; }
static inline void put_be32(u8 *p, u32 v) { put_be16(p, (u16)(v >> 16)); put_be16(p + 2, (u16)v); }
static inline u16 get_be16(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }
static inline u32 get_be32(const u8 *p) { return (u32)get_be16(p) << 16 | get_be16(p + 2); }
/* One's complement sum folded and complemented (RFC 1071). */
u16 inet_csum(const void *p, u32 len);
void print_mac(const u8 *m);
void print_ip(u32 ip);
/* Parses "A.B.C.D" cmdline value of key into *ip; 1 ok. */
int cmdline_get_ip(const char *key, u32 *ip);

#endif
