/* Polled virtio-mmio v2 driver + virtio-blk helpers: see virtio_mmio.h. */
#include "virtio_mmio.h"

/* ------------------------------------------------------------------ */
/* cmdline: virtio_mmio.device=<size>@<base>:<irq>[:<id>]              */
/* ------------------------------------------------------------------ */
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* strtoull(s, &end, 0) over [*p, end): 0x hex, leading 0 octal, decimal. */
static int parse_num(const char **p, const char *end, u64 *out)
{
    const char *s = *p;
    unsigned base = 10;
    u64 v = 0;
    int digits = 0;
    if (s < end && *s == '0') {
        base = 8;
        if (s + 1 < end && (s[1] == 'x' || s[1] == 'X')) {
            base = 16;
            s += 2;
        }
    }
    for (; s < end; s++, digits++) {
        unsigned d;
        char c = *s;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            break;
        if (d >= base)
            break;
        if (v > (~0UL - d) / base)
            return 0;
        v = v * base + d;
    }
    if (!digits && base != 8) /* "0" alone is a valid octal zero */
        return 0;
    *out = v;
    *p = s;
    return 1;
}

static int parse_slot(const char *s, const char *end, struct virtio_mmio_slot *slot)
{
    u64 size, base, irq;
    if (!parse_num(&s, end, &size))
        return 0;
    if (s < end) { /* memparse suffixes */
        int shift = 0;
        switch (*s) {
        case 'K': case 'k': shift = 10; break;
        case 'M': case 'm': shift = 20; break;
        case 'G': case 'g': shift = 30; break;
        }
        if (shift) {
            size <<= shift;
            s++;
        }
    }
    if (s >= end || *s++ != '@' || !parse_num(&s, end, &base))
        return 0;
    if (s >= end || *s++ != ':' || s >= end || *s < '0' || *s > '9' || !parse_num(&s, end, &irq))
        return 0;
    if (s < end && *s != ':') /* optional ":<id>" is ignored */
        return 0;
    if (!size || irq > 0xffffffffUL)
        return 0;
    slot->size = size;
    slot->base = base;
    slot->irq = (u32)irq;
    return 1;
}

int virtio_mmio_parse_cmdline(struct virtio_mmio_slot *out, int max)
{
    static const char key[] = "virtio_mmio.device=";
    const size_t klen = sizeof(key) - 1;
    const char *p = g_boot.cmdline;
    int n = 0;
    while (*p) {
        while (*p && is_space(*p))
            p++;
        const char *t = p;
        while (*p && !is_space(*p))
            p++;
        if ((size_t)(p - t) <= klen || memcmp(t, key, klen))
            continue;
        if (n >= max) {
            gprintf("info: more than %d virtio_mmio.device entries, ignoring the rest\n", max);
            break;
        }
        if (parse_slot(t + klen, p, &out[n]))
            n++;
        else {
            serial_puts("info: ignoring malformed cmdline token \"");
            for (const char *c = t; c < p; c++)
                serial_putc(*c);
            serial_puts("\"\n");
        }
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* transport                                                           */
/* ------------------------------------------------------------------ */
u32 virtio_poll_iters(void)
{
    u64 v;
    if (cmdline_get_u64("poll_iters", &v) && v > 0 && v <= 0xffffffffUL)
        return (u32)v;
    return 200000;
}

int virtio_find(u32 device_id, int index, struct vdev *d, const char *who)
{
    struct virtio_mmio_slot slots[VIRTIO_MMIO_MAX_SLOTS];
    int n = virtio_mmio_parse_cmdline(slots, VIRTIO_MMIO_MAX_SLOTS);
    memset(d, 0, sizeof(*d));
    for (int i = 0; i < n; i++) {
        d->base = slots[i].base;
        d->size = slots[i].size;
        d->irq = slots[i].irq;
        if (!phys_reachable(d->base, 0x100) || (d->base & 3)) {
            gprintf("info: %s: skipping virtio_mmio.device at 0x%lx (not reachable)\n", who, d->base);
            continue;
        }
        u32 magic = vm_read(d, VIRTIO_MMIO_MAGIC_VALUE);
        d->version = vm_read(d, VIRTIO_MMIO_VERSION);
        d->device_id = vm_read(d, VIRTIO_MMIO_DEVICE_ID);
        d->vendor_id = vm_read(d, VIRTIO_MMIO_VENDOR_ID);
        if (magic != VIRTIO_MMIO_MAGIC) {
            gprintf("info: %s: 0x%lx: bad MagicValue 0x%x\n", who, d->base, magic);
            continue;
        }
        if (d->device_id != device_id)
            continue;
        if (d->version != 2) {
            gprintf("info: %s: 0x%lx: device id %u has Version %u (only 2 supported)\n", who, d->base,
                    d->device_id, d->version);
            continue;
        }
        if (index-- == 0)
            return 0;
    }
    memset(d, 0, sizeof(*d));
    return -1;
}

int virtio_reset(struct vdev *d)
{
    vm_write(d, VIRTIO_MMIO_STATUS, 0);
    for (u32 i = 0, n = virtio_poll_iters(); i < n; i++)
        if (virtio_status(d) == 0)
            return 0;
    return -1;
}

static void set_status(struct vdev *d, u32 bits) { vm_write(d, VIRTIO_MMIO_STATUS, virtio_status(d) | bits); }

int virtio_negotiate(struct vdev *d, u64 want, const char *who)
{
    if (virtio_reset(d)) {
        gprintf("FAIL: %s: device reset: Status still 0x%x\n", who, virtio_status(d));
        return -1;
    }
    set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
    set_status(d, VIRTIO_STATUS_DRIVER);

    vm_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    u64 lo = vm_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
    vm_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    u64 hi = vm_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
    d->dev_features = lo | hi << 32;
    if (!(d->dev_features & FEAT(VIRTIO_F_VERSION_1))) {
        gprintf("FAIL: %s: device does not offer VIRTIO_F_VERSION_1 (features 0x%lx)\n", who, d->dev_features);
        set_status(d, VIRTIO_STATUS_FAILED);
        return -1;
    }
    d->drv_features = (d->dev_features & want) | FEAT(VIRTIO_F_VERSION_1);
    vm_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    vm_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (u32)d->drv_features);
    vm_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    vm_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (u32)(d->drv_features >> 32));

    set_status(d, VIRTIO_STATUS_FEATURES_OK);
    u32 st = virtio_status(d);
    if (!(st & VIRTIO_STATUS_FEATURES_OK)) {
        gprintf("FAIL: %s: device did not accept features 0x%lx (Status 0x%x)\n", who, d->drv_features, st);
        set_status(d, VIRTIO_STATUS_FAILED);
        return -1;
    }
    return 0;
}

u32 virtio_write_queue(struct vdev *d, u32 qnum, u64 da, u64 aa, u64 ua)
{
    vm_write(d, VIRTIO_MMIO_QUEUE_NUM, qnum);
    vm_write(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (u32)da);
    vm_write(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (u32)(da >> 32));
    vm_write(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (u32)aa);
    vm_write(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (u32)(aa >> 32));
    vm_write(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (u32)ua);
    vm_write(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (u32)(ua >> 32));
    vm_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
    return vm_read(d, VIRTIO_MMIO_QUEUE_READY);
}

/* QueueNum, ring addresses and QueueReady=1 for the selected queue. */
static int program_queue(struct vdev *d, u16 index, u16 qnum, u64 da, u64 aa, u64 ua, const char *who)
{
    if (virtio_write_queue(d, qnum, da, aa, ua) != 1) {
        gprintf("FAIL: %s: queue %u: QueueReady does not read back 1\n", who, index);
        return -1;
    }
    return 0;
}

/* Ring memory: one queue of VQ_SIZE entries. */
struct vring_desc vq_desc_mem[VQ_SIZE] __attribute__((aligned(4096)));
static struct vring_avail vq_avail_mem __attribute__((aligned(64)));
static struct vring_used vq_used_mem __attribute__((aligned(64)));

int virtio_setup_queue(struct vdev *d, u16 qnum, const char *who)
{
    vm_write(d, VIRTIO_MMIO_QUEUE_SEL, 0);
    if (vm_read(d, VIRTIO_MMIO_QUEUE_READY)) {
        gprintf("FAIL: %s: queue 0 already ready after reset\n", who);
        return -1;
    }
    d->qmax = vm_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
    if (d->qmax == 0) {
        gprintf("FAIL: %s: queue 0 not available (QueueNumMax 0)\n", who);
        return -1;
    }
    if (qnum > VQ_SIZE || (qnum & (qnum - 1)) || qnum == 0)
        qnum = VQ_SIZE;
    while (qnum > d->qmax)
        qnum >>= 1;
    if (qnum == 0) {
        gprintf("FAIL: %s: QueueNumMax %u unusable\n", who, d->qmax);
        return -1;
    }
    d->qnum = qnum;
    memset(vq_desc_mem, 0, sizeof(vq_desc_mem));
    memset(&vq_avail_mem, 0, sizeof(vq_avail_mem));
    memset(&vq_used_mem, 0, sizeof(vq_used_mem));
    d->desc = vq_desc_mem;
    d->avail = &vq_avail_mem;
    d->used = &vq_used_mem;
    d->avail_idx = d->used_idx = d->next_desc = 0;
    return program_queue(d, 0, qnum, (u64)vq_desc_mem, (u64)&vq_avail_mem, (u64)&vq_used_mem, who);
}

void virtio_driver_ok(struct vdev *d) { set_status(d, VIRTIO_STATUS_DRIVER_OK); }

int virtio_driver_ok_check(struct vdev *d, const char *who)
{
    virtio_driver_ok(d);
    u32 st = virtio_status(d);
    if ((st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) || !(st & VIRTIO_STATUS_DRIVER_OK)) {
        gprintf("FAIL: %s: Status 0x%x after DRIVER_OK\n", who, st);
        return -1;
    }
    return 0;
}

int virtio_init(struct vdev *d, u64 want, const char *who)
{
    if (virtio_negotiate(d, want, who) || virtio_setup_queue(d, VQ_SIZE, who)) {
        set_status(d, VIRTIO_STATUS_FAILED);
        return -1;
    }
    return virtio_driver_ok_check(d, who);
}

u32 virtio_cfg_read32(const struct vdev *d, u32 off) { return vm_read(d, VIRTIO_MMIO_CONFIG + off); }
u8 virtio_cfg_read8(const struct vdev *d, u32 off) { return *(volatile u8 *)(d->base + VIRTIO_MMIO_CONFIG + off); }
u16 virtio_cfg_read16(const struct vdev *d, u32 off) { return *(volatile u16 *)(d->base + VIRTIO_MMIO_CONFIG + off); }

u64 virtio_cfg_read64(const struct vdev *d, u32 off)
{
    u64 v = 0;
    for (int tries = 0; tries < 16; tries++) {
        u32 g = vm_read(d, VIRTIO_MMIO_CONFIG_GENERATION);
        u64 lo = vm_read(d, VIRTIO_MMIO_CONFIG + off);
        u64 hi = vm_read(d, VIRTIO_MMIO_CONFIG + off + 4);
        v = lo | hi << 32;
        if (vm_read(d, VIRTIO_MMIO_CONFIG_GENERATION) == g)
            break;
    }
    return v;
}

/* ------------------------------------------------------------------ */
/* virtqueue                                                           */
/* ------------------------------------------------------------------ */
void vq_publish(struct vdev *d, u16 head)
{
    d->avail->ring[d->avail_idx % d->qnum] = head;
    barrier(); /* x86: stores are not reordered with stores */
    d->avail->idx = ++d->avail_idx;
    barrier();
    vm_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static void ack_interrupt(struct vdev *d)
{
    u32 isr = vm_read(d, VIRTIO_MMIO_INTERRUPT_STATUS);
    if (isr)
        vm_write(d, VIRTIO_MMIO_INTERRUPT_ACK, isr);
}

int vq_wait(struct vdev *d, u32 *id, u32 *len)
{
    for (u32 i = 0, n = virtio_poll_iters(); i < n; i++) {
        if (d->used->idx != d->used_idx) {
            barrier();
            volatile struct vring_used_elem *e = &d->used->ring[d->used_idx % d->qnum];
            *id = e->id;
            *len = e->len;
            d->used_idx++;
            ack_interrupt(d);
            return 0;
        }
        (void)vm_read(d, VIRTIO_MMIO_INTERRUPT_STATUS); /* pacing: one exit per poll */
    }
    return -1;
}

int vq_submit(struct vdev *d, const struct vbuf *bufs, int n, u32 *used_len)
{
    u16 head = d->next_desc, idx = head;
    for (int i = 0; i < n; i++) {
        volatile struct vring_desc *ds = &d->desc[idx];
        u16 next = (u16)((idx + 1) % d->qnum);
        ds->addr = bufs[i].addr;
        ds->len = bufs[i].len;
        ds->flags = (u16)((bufs[i].write ? VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VRING_DESC_F_NEXT : 0));
        ds->next = i + 1 < n ? next : 0;
        idx = next;
    }
    d->next_desc = idx;
    vq_publish(d, head);
    u32 id, len;
    if (vq_wait(d, &id, &len))
        return -1;
    if (used_len)
        *used_len = len;
    if (id != head) {
        gprintf("info: used ring returned id %u, expected head %u\n", id, head);
        return -2;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* multi-queue API                                                     */
/* ------------------------------------------------------------------ */
u32 virtio_queue_num_max(struct vdev *d, u16 index)
{
    vm_write(d, VIRTIO_MMIO_QUEUE_SEL, index);
    return vm_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
}

int virtio_setup_queue_n(struct vdev *d, u16 index, struct vqueue *q, u16 qnum, const char *who)
{
    memset(q, 0, sizeof(*q));
    q->index = index;
    vm_write(d, VIRTIO_MMIO_QUEUE_SEL, index);
    if (vm_read(d, VIRTIO_MMIO_QUEUE_READY)) {
        gprintf("FAIL: %s: queue %u already ready after reset\n", who, index);
        return -1;
    }
    q->qmax = vm_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
    if (q->qmax == 0) {
        gprintf("FAIL: %s: queue %u not available (QueueNumMax 0)\n", who, index);
        return -1;
    }
    u32 n = qnum ? qnum : VQN_MAX;
    if (n > VQN_MAX)
        n = VQN_MAX;
    if (n > q->qmax)
        n = q->qmax;
    u32 p2 = 1;
    while (p2 * 2 <= n)
        p2 *= 2;
    q->qnum = (u16)p2;
    /* Free list 0 -> 1 -> ... -> qnum-1. */
    for (u16 i = 0; i < q->qnum; i++)
        q->next_of[i] = (u16)(i + 1);
    q->free_head = 0;
    q->nfree = q->qnum;
    return program_queue(d, index, q->qnum, (u64)q->desc, (u64)&q->avail, (u64)&q->used, who);
}

int vqueue_add(struct vqueue *q, const struct vbuf *bufs, int n, u64 cookie)
{
    if (n <= 0 || n > q->nfree)
        return -1;
    volatile struct vring_desc *t = q->desc;
    u16 head = q->free_head, idx = head;
    for (int i = 0; i < n; i++) {
        u16 next = q->next_of[idx];
        t[idx].addr = bufs[i].addr;
        t[idx].len = bufs[i].len;
        t[idx].flags = (u16)((bufs[i].write ? VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VRING_DESC_F_NEXT : 0));
        t[idx].next = i + 1 < n ? next : 0;
        if (i + 1 < n)
            idx = next;
    }
    q->free_head = q->next_of[idx];
    q->nfree = (u16)(q->nfree - n);
    q->chain_len[head] = (u16)n;
    q->cookie[head] = cookie;
    return head;
}

void vqueue_make_avail(struct vqueue *q, u16 head)
{
    volatile struct vqn_avail *a = &q->avail;
    a->ring[q->avail_idx % q->qnum] = head;
    barrier(); /* x86: stores are not reordered with stores */
    a->idx = ++q->avail_idx;
    barrier();
}

void vqueue_kick(struct vdev *d, struct vqueue *q) { vm_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, q->index); }

int vqueue_post(struct vdev *d, struct vqueue *q, const struct vbuf *bufs, int n, u64 cookie)
{
    int head = vqueue_add(q, bufs, n, cookie);
    if (head < 0)
        return -1;
    vqueue_make_avail(q, (u16)head);
    vqueue_kick(d, q);
    return head;
}

int vqueue_get(struct vdev *d, struct vqueue *q, u32 *id, u32 *len, u64 *cookie)
{
    volatile struct vqn_used *u = &q->used;
    if (u->idx == q->used_idx)
        return 0;
    barrier(); /* x86: loads are not reordered with loads */
    volatile struct vring_used_elem *e = &u->ring[q->used_idx % q->qnum];
    u32 eid = e->id, elen = e->len;
    q->used_idx++;
    ack_interrupt(d);
    if (id)
        *id = eid;
    if (len)
        *len = elen;
    if (eid >= q->qnum || q->chain_len[eid] == 0) {
        gprintf("info: queue %u: used ring returned id %u (len %u), not a head in flight\n", q->index, eid, elen);
        return -2;
    }
    /* Return the chain to the free list, following our own links (the
     * device cannot have changed them). */
    u16 n = q->chain_len[eid], last = (u16)eid;
    for (u16 i = 1; i < n; i++)
        last = q->next_of[last];
    q->next_of[last] = q->free_head;
    q->free_head = (u16)eid;
    q->nfree = (u16)(q->nfree + n);
    q->chain_len[eid] = 0;
    if (cookie)
        *cookie = q->cookie[eid];
    return 1;
}

int vqueue_wait(struct vdev *d, struct vqueue *q, u32 *id, u32 *len, u64 *cookie, u32 polls)
{
    if (!polls)
        polls = virtio_poll_iters();
    for (u32 i = 0; i < polls; i++) {
        int r = vqueue_get(d, q, id, len, cookie);
        if (r)
            return r == 1 ? 0 : r;
        (void)vm_read(d, VIRTIO_MMIO_INTERRUPT_STATUS); /* pacing: one exit per poll */
    }
    return -1;
}

int vqueue_submit(struct vdev *d, struct vqueue *q, const struct vbuf *bufs, int n, u32 *used_len)
{
    int head = vqueue_post(d, q, bufs, n, 0);
    if (head < 0)
        return -2;
    u32 id, len;
    int r = vqueue_wait(d, q, &id, &len, NULL, 0);
    if (r)
        return r;
    if (used_len)
        *used_len = len;
    if (id != (u32)head) {
        gprintf("info: queue %u: used ring returned id %u, expected head %d\n", q->index, id, head);
        return -2;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* virtio-blk                                                          */
/* ------------------------------------------------------------------ */
static struct virtio_blk_req_hdr blk_hdr __attribute__((aligned(16)));
static volatile u8 blk_status_byte;

int blk_request(struct vdev *d, u32 type, u64 sector, const struct vbuf *data, int nbufs, u32 *used_len)
{
    struct vbuf b[VQ_SIZE];
    int n = 0, dev_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
    if (nbufs + 2 > d->qnum)
        return -1;
    blk_hdr.type = type;
    blk_hdr.reserved = 0;
    blk_hdr.sector = sector;
    blk_status_byte = 0xff;
    b[n++] = (struct vbuf){(u64)&blk_hdr, sizeof(blk_hdr), 0};
    for (int i = 0; i < nbufs; i++) {
        b[n] = data[i];
        b[n++].write = dev_writes;
    }
    b[n++] = (struct vbuf){(u64)&blk_status_byte, 1, 1};
    int r = vq_submit(d, b, n, used_len);
    return r ? r : blk_status_byte;
}

int blk_rw(struct vdev *d, u32 type, u64 sector, void *buf, u32 len, u32 *used_len)
{
    struct vbuf b = {(u64)buf, len, 0};
    return blk_request(d, type, sector, &b, buf ? 1 : 0, used_len);
}

const char *blk_status_name(int st)
{
    switch (st) {
    case VIRTIO_BLK_S_OK: return "OK";
    case VIRTIO_BLK_S_IOERR: return "IOERR";
    case VIRTIO_BLK_S_UNSUPP: return "UNSUPP";
    case -1: return "timeout";
    case -2: return "bad used id";
    case 0xff: return "not written";
    default: return "unknown";
    }
}

void blk_fill_pattern(void *buf, u64 first_sector, u32 nsect, u64 tag)
{
    u64 *p = buf;
    for (u32 s = 0; s < nsect; s++)
        for (int i = 0; i < SECTOR_SIZE / 8; i++)
            *p++ = tag | (first_sector + s);
}

int blk_check_pattern(const void *buf, u64 first_sector, u32 nsect, u64 tag, u64 *got)
{
    const u64 *p = buf;
    for (u32 s = 0; s < nsect; s++)
        for (int i = 0; i < SECTOR_SIZE / 8; i++, p++)
            if (*p != (tag | (first_sector + s))) {
                *got = *p;
                return (int)s;
            }
    return -1;
}
