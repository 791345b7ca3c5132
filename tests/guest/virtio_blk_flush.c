/*
 * virtio_blk_flush: writes sectors N..N+7 (write_sector=N, default 32) of
 * the first virtio-mmio block device with 0x5A5A000000000000 | sector in
 * one request, sends FLUSH, waits for it, prints
 * "virtio_blk_flush: flushed" and then halts forever (cli; hlt).  The host
 * test kills the VMM right after that line and checks the image.
 *
 * Cmdline tokens: write_sector=N, blk_index=N, poll_iters=N.
 * Failures: "FAIL: ..." and exit 1 (2 for a bad write_sector=).
 */
#include "virtio_mmio.h"

#define WHO "virtio_blk_flush"
#define TAG 0x5A5A000000000000UL
#define NSECT 8

static u8 buf[NSECT * SECTOR_SIZE] __attribute__((aligned(4096)));

int guest_main(const struct boot_info *bi)
{
    (void)bi;
    struct vdev d;
    u64 index = 0, ws = 32;
    size_t tlen;
    u32 len = 0;

    cmdline_get_u64("blk_index", &index);
    if (virtio_find(VIRTIO_ID_BLOCK, (int)index, &d, WHO)) {
        gprintf("FAIL: " WHO ": no virtio-mmio block device #%lu on the cmdline\n", index);
        return EXIT_FAIL;
    }
    if (virtio_init(&d, FEAT(VIRTIO_BLK_F_FLUSH) | FEAT(VIRTIO_BLK_F_RO) | FEAT(VIRTIO_BLK_F_BLK_SIZE), WHO))
        return EXIT_FAIL;
    u64 cap = virtio_cfg_read64(&d, VIRTIO_BLK_CFG_CAPACITY);
    gprintf(WHO ": device at 0x%lx irq %u, capacity %lu sectors, features 0x%lx\n", d.base, d.irq, cap,
            d.dev_features);
    if (cmdline_get("write_sector", &tlen) && !cmdline_get_u64("write_sector", &ws)) {
        gprintf("FAIL: " WHO ": bad write_sector=\n");
        return EXIT_USAGE;
    }
    if (ws + NSECT > cap) {
        gprintf("FAIL: " WHO ": sectors %lu..%lu beyond capacity %lu\n", ws, ws + NSECT - 1, cap);
        return EXIT_USAGE;
    }
    if (!(d.dev_features & FEAT(VIRTIO_BLK_F_FLUSH)))
        gprintf("info: device does not offer VIRTIO_BLK_F_FLUSH\n");

    blk_fill_pattern(buf, ws, NSECT, TAG);
    int st = blk_rw(&d, VIRTIO_BLK_T_OUT, ws, buf, sizeof(buf), &len);
    if (st != VIRTIO_BLK_S_OK) {
        gprintf("FAIL: " WHO ": write of sectors %lu..%lu: status %s (%d)\n", ws, ws + NSECT - 1,
                blk_status_name(st), st);
        return EXIT_FAIL;
    }
    gprintf(WHO ": wrote sectors %lu..%lu\n", ws, ws + NSECT - 1);
    st = blk_rw(&d, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, &len);
    if (st != VIRTIO_BLK_S_OK) {
        gprintf("FAIL: " WHO ": flush: status %s (%d)\n", blk_status_name(st), st);
        return EXIT_FAIL;
    }
    gprintf(WHO ": flushed\n");
    halt_forever();
}
