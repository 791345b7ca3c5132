/*
 * virtio_console_flood: prints numbered lines forever, for VMM tests whose
 * stdout nobody reads (the VMM must neither block a vCPU nor its I/O thread
 * on it).  "virtio_console_flood: ready" first on the serial port, then:
 *  - default: lines on the serial port, one byte per port write;
 *  - via=hvc: 64 KiB chains on the first virtio console's transmitq (16
 *    descriptors, each the same 4 KiB of lines), one at a time; a chain that
 *    does not complete within poll_iters polls is reported once
 *    ("info: ...") and the flood goes on with the next.
 * Never exits (stop it with SIGTERM).
 */
#include "virtio_mmio.h"

#define WHO "virtio_console_flood"
#define TXQ 1
#define CHUNK 4096
#define PER_CHAIN 16 /* descriptors per chain, all of the transmitq */

static struct vqueue txq;
static char chunk[CHUNK] __attribute__((aligned(64)));

/* Fills chunk with lines "virtio_console_flood: line N ...\n" from line *n. */
static void fill(u64 *n)
{
    u32 at = 0;
    while (at + 64 <= CHUNK) {
        const char *prefix = WHO ": line ";
        for (const char *p = prefix; *p; p++)
            chunk[at++] = *p;
        char digits[20];
        int count = 0;
        u64 v = (*n)++;
        do {
            digits[count++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        while (count)
            chunk[at++] = digits[--count];
        while (at % 64 != 63)
            chunk[at++] = '.';
        chunk[at++] = '\n';
    }
    while (at < CHUNK)
        chunk[at++] = '\n';
}

static void flood_hvc(void)
{
    struct vdev d;
    if (virtio_find(VIRTIO_ID_CONSOLE, 0, &d, WHO) || virtio_negotiate(&d, 0, WHO) ||
        virtio_setup_queue_n(&d, TXQ, &txq, PER_CHAIN, WHO) || virtio_driver_ok_check(&d, WHO)) {
        gprintf("FAIL: " WHO ": no usable virtio console\n");
        halt_forever();
    }
    gprintf(WHO ": ready (hvc)\n");
    u64 n = 0;
    int reported = 0;
    for (;;) {
        fill(&n);
        struct vbuf b[PER_CHAIN];
        for (int i = 0; i < PER_CHAIN; i++)
            b[i] = (struct vbuf){(u64)chunk, CHUNK, 0};
        u32 len;
        int r = vqueue_submit(&d, &txq, b, PER_CHAIN, &len);
        if (r && !reported) {
            gprintf("info: " WHO ": a chain did not complete (%d): the device is stuck\n", r);
            reported = 1;
        }
    }
}

int guest_main(const struct boot_info *bi)
{
    (void)bi;
    size_t len;
    const char *via = cmdline_get("via", &len);
    if (via && len == 3 && !strncmp(via, "hvc", 3))
        flood_hvc();
    gprintf(WHO ": ready (serial)\n");
    u64 n = 0;
    for (;;)
        gprintf(WHO ": line %lu ..............................................\n", n++);
}
