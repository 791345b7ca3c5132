/*
 * virtio_console: drives the first virtio-mmio console device (DeviceID 3,
 * VIRTIO 1.2 5.3) as a single-port console: queue 0 = receiveq (port 0),
 * queue 1 = transmitq (port 0).  Negotiates VERSION_1 and
 * VIRTIO_CONSOLE_F_SIZE when offered, never MULTIPORT or EMERG_WRITE.
 *
 *  1. On the serial port: "virtio_console: device at ..., features ...";
 *     with F_SIZE "virtio_console: size COLSxROWS" (cols/rows read with
 *     16-bit accesses under ConfigGeneration), else "virtio_console: size
 *     not offered".  expect_cols=N / expect_rows=N check them (and then
 *     require F_SIZE).
 *  2. On the transmitq: "virtio_console: hello from hvc\n", as one chain of
 *     two device-readable descriptors ("virtio_console: hello" + " from
 *     hvc\n"); the used id must be the head (used len 0 expected, other
 *     values are a "warn:" line).
 *  3. Posts 8 receive buffers of rx_buf bytes (default 64, 1..256) and
 *     collects bytes until '\n' or '\r' (empty lines are skipped, bytes
 *     past 200 dropped), reposting each buffer; bounded by line_polls
 *     polls in all (default 4 * poll_iters).  The test feeds "ping-hvc\n"
 *     on the VMM's stdin.
 *  4. On the transmitq (one descriptor): "virtio_console: echo <line>\n";
 *     on the serial port: "virtio_console: got line \"<line>\"" (worded
 *     differently, so matching the hvc output cannot be fooled by the
 *     serial copy when both end up on the same stdout).
 * Then "virtio_console: PASS" on the serial port, exit 0.  Failures: a
 * "FAIL: ..." line and "virtio_console: FAIL" on the serial port, exit 1
 * (e.g. "FAIL: virtio_console: no line on the receiveq within N polls").
 *
 * Tokens: expect_cols=N, expect_rows=N, rx_buf=N, line_polls=N,
 * console_index=N, poll_iters=N.
 */
#include "virtio_mmio.h"

#define WHO "virtio_console"
#define VIRTIO_CONSOLE_F_SIZE 0
#define VIRTIO_CONSOLE_F_MULTIPORT 1
#define VIRTIO_CONSOLE_F_EMERG_WRITE 2
#define VIRTIO_CONSOLE_CFG_COLS 0 /* le16 */
#define VIRTIO_CONSOLE_CFG_ROWS 2 /* le16 */
#define RXQ 0
#define TXQ 1
#define NRX 8
#define RX_MAX 256
#define LINE_MAX 200

static struct vqueue rxq, txq;
static u8 rx_mem[NRX][RX_MAX] __attribute__((aligned(64)));
static char tx_mem[2][256] __attribute__((aligned(64)));
static char line[LINE_MAX + 1];
static int failed;

static int finish(void)
{
    gprintf(failed ? WHO ": FAIL\n" : WHO ": PASS\n");
    return failed ? EXIT_FAIL : EXIT_PASS;
}

static int fail_exit(void)
{
    failed = 1;
    return finish();
}

/* Writes the chain and waits for it; 0 ok. */
static int tx(struct vdev *d, const struct vbuf *b, int n, const char *what)
{
    u32 len = 0;
    int r = vqueue_submit(d, &txq, b, n, &len);
    if (r) {
        gprintf("FAIL: " WHO ": %s on the transmitq: %s (Status 0x%x)\n", what,
                r == -1 ? "not completed within poll_iters" : "bad used id", virtio_status(d));
        return -1;
    }
    if (len != 0)
        gprintf("warn: " WHO ": %s: transmitq used len %u (expected 0: the device writes nothing)\n", what, len);
    gprintf("info: " WHO ": %s written on the transmitq\n", what);
    return 0;
}

int guest_main(const struct boot_info *bi)
{
    (void)bi;
    struct vdev d;
    u64 v, index = 0, rxsize = 64, ecols, erows;
    cmdline_get_u64("console_index", &index);
    if (cmdline_get_u64("rx_buf", &v) && v >= 1 && v <= RX_MAX)
        rxsize = v;
    u64 line_polls = 4 * (u64)virtio_poll_iters();
    if (cmdline_get_u64("line_polls", &v) && v > 0)
        line_polls = v;
    int want_cols = cmdline_get_u64("expect_cols", &ecols), want_rows = cmdline_get_u64("expect_rows", &erows);

    if (virtio_find(VIRTIO_ID_CONSOLE, (int)index, &d, WHO)) {
        gprintf("FAIL: " WHO ": no virtio-mmio console device #%lu on the cmdline (cmdline: \"%s\")\n", index,
                g_boot.cmdline);
        return fail_exit();
    }
    if (virtio_negotiate(&d, FEAT(VIRTIO_CONSOLE_F_SIZE), WHO) || virtio_setup_queue_n(&d, RXQ, &rxq, NRX, WHO) ||
        virtio_setup_queue_n(&d, TXQ, &txq, 16, WHO) || virtio_driver_ok_check(&d, WHO))
        return fail_exit();
    gprintf(WHO ": device at 0x%lx irq %u, features offered 0x%lx, accepted 0x%lx\n", d.base, d.irq, d.dev_features,
            d.drv_features);
    gprintf("info: receiveq %u entries (QueueNumMax %u), transmitq %u (QueueNumMax %u)\n", rxq.qnum, rxq.qmax,
            txq.qnum, txq.qmax);

    if (d.drv_features & FEAT(VIRTIO_CONSOLE_F_SIZE)) {
        u16 cols = 0, rows = 0;
        for (int tries = 0; tries < 16; tries++) {
            u32 g = virtio_cfg_generation(&d);
            cols = virtio_cfg_read16(&d, VIRTIO_CONSOLE_CFG_COLS);
            rows = virtio_cfg_read16(&d, VIRTIO_CONSOLE_CFG_ROWS);
            if (virtio_cfg_generation(&d) == g)
                break;
        }
        gprintf(WHO ": size %ux%u\n", cols, rows);
        if ((want_cols && cols != ecols) || (want_rows && rows != erows)) {
            gprintf("FAIL: " WHO ": size %ux%u, expected cols %lu rows %lu\n", cols, rows, want_cols ? ecols : cols,
                    want_rows ? erows : rows);
            failed = 1;
        }
    } else {
        gprintf(WHO ": size not offered\n");
        if (want_cols || want_rows) {
            gprintf("FAIL: " WHO ": expect_cols/expect_rows given but VIRTIO_CONSOLE_F_SIZE not offered\n");
            failed = 1;
        }
    }

    /* Hello, gathered from two descriptors. */
    static const char h1[] = "virtio_console: hello", h2[] = " from hvc\n";
    memcpy(tx_mem[0], h1, sizeof(h1) - 1);
    memcpy(tx_mem[1], h2, sizeof(h2) - 1);
    struct vbuf hb[2] = {{(u64)tx_mem[0], sizeof(h1) - 1, 0}, {(u64)tx_mem[1], sizeof(h2) - 1, 0}};
    if (tx(&d, hb, 2, "hello line (2 descriptors)"))
        return fail_exit();

    /* Receive buffers, then one line. */
    for (u32 i = 0; i < NRX && i < rxq.qnum; i++) {
        struct vbuf b = {(u64)rx_mem[i], (u32)rxsize, 1};
        memset(rx_mem[i], 0, RX_MAX);
        int head = vqueue_add(&rxq, &b, 1, i);
        if (head >= 0)
            vqueue_make_avail(&rxq, (u16)head);
    }
    vqueue_kick(&d, &rxq);
    gprintf("info: " WHO ": %u receive buffers of %lu bytes posted, waiting for a line\n", rxq.qnum - rxq.nfree,
            rxsize);

    u32 n = 0, bufs = 0, bytes = 0;
    int done = 0;
    u64 polls = 0;
    while (!done && polls < line_polls) {
        u32 id, len;
        u64 ck;
        int r = vqueue_get(&d, &rxq, &id, &len, &ck);
        polls++;
        if (r == 0) {
            (void)vm_read(&d, VIRTIO_MMIO_INTERRUPT_STATUS); /* pacing */
            continue;
        }
        if (r < 0 || ck >= NRX) {
            gprintf("FAIL: " WHO ": receiveq returned id %u that is not a posted buffer\n", id);
            return fail_exit();
        }
        if (len > rxsize) {
            gprintf("FAIL: " WHO ": receiveq used len %u > buffer size %lu\n", len, rxsize);
            return fail_exit();
        }
        bufs++;
        bytes += len;
        for (u32 i = 0; i < len && !done; i++) {
            char c = (char)rx_mem[ck][i];
            if (c == '\n' || c == '\r') {
                if (n)
                    done = 1;
            } else if (n < LINE_MAX) {
                line[n++] = c;
            }
        }
        /* Repost the buffer (bytes after the newline are dropped). */
        struct vbuf b = {(u64)rx_mem[ck], (u32)rxsize, 1};
        memset(rx_mem[ck], 0, RX_MAX);
        int head = vqueue_add(&rxq, &b, 1, ck);
        if (head >= 0) {
            vqueue_make_avail(&rxq, (u16)head);
            vqueue_kick(&d, &rxq);
        }
    }
    line[n] = 0;
    if (!done) {
        gprintf("FAIL: " WHO ": no line on the receiveq within %lu polls (%u buffers, %u bytes, %u kept)\n",
                line_polls, bufs, bytes, n);
        return fail_exit();
    }
    gprintf("info: " WHO ": line of %u bytes in %u buffer(s) (%u bytes received)\n", n, bufs, bytes);
    for (u32 i = 0; i < n; i++)
        if ((u8)line[i] < 0x20 || (u8)line[i] >= 0x7f)
            line[i] = '?';
    gprintf(WHO ": got line \"%s\"\n", line);

    /* Echo in one descriptor. */
    static const char e[] = "virtio_console: echo ";
    u32 el = sizeof(e) - 1;
    memcpy(tx_mem[0], e, el);
    memcpy(tx_mem[0] + el, line, n);
    tx_mem[0][el + n] = '\n';
    struct vbuf eb = {(u64)tx_mem[0], el + n + 1, 0};
    if (tx(&d, &eb, 1, "echo line"))
        return fail_exit();

    u32 st = virtio_status(&d);
    if ((st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) || !(st & VIRTIO_STATUS_DRIVER_OK)) {
        gprintf("FAIL: " WHO ": device Status 0x%x at the end\n", st);
        failed = 1;
    }
    virtio_reset(&d);
    return finish();
}
