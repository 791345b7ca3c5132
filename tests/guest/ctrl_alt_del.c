/* ctrl_alt_del: waits for the VMM to type Ctrl+Alt+Del on the i8042
 * (Firecracker's SendCtrlAltDel).  Sets the keyboard-interrupt bit (0x01) and
 * enables the keyboard (clears 0x10) in the command byte, prints "ready",
 * then polls port 0x64 and reads the bytes from port 0x60.  They must be the
 * set-1 codes 1d 38 e0 53 e0 d3 b8 9d (Ctrl, Alt, Del made, then broken),
 * with nothing after them, and IRQ 1 must be pending in the PIC's IRR (the
 * guest keeps interrupts off, so the edge stays latched there).
 * Optional cad_timeout=N: give up after N empty status polls (exit 2).
 * check_irq=0 skips the IRR check. */
#include "runtime.h"

#define I8042_STATUS_OBF 0x01
#define I8042_STATUS_AUX 0x20
#define I8042_CTR_KBDINT 0x01
#define I8042_CTR_KBDDIS 0x10
#define PIC1_CMD 0x20
#define PIC_READ_IRR 0x0a

static const u8 expected[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};

static u8 pic1_irr(void)
{
    outb(PIC_READ_IRR, PIC1_CMD);
    return inb(PIC1_CMD);
}

/* Reads the controller's answer to a command; 0 if none comes. */
static int read_answer(u8 *out)
{
    for (int i = 0; i < 1000; i++) {
        if (inb(I8042_CMD_PORT) & I8042_STATUS_OBF) {
            *out = inb(I8042_DATA_PORT);
            return 1;
        }
    }
    return 0;
}

int guest_main(const struct boot_info *bi)
{
    u64 timeout = 0, check_irq = 1, polls = 0;
    u8 ctr, got[sizeof(expected)];
    size_t n = 0;
    int ok = 1;
    (void)bi;
    cmdline_get_u64("cad_timeout", &timeout);
    cmdline_get_u64("check_irq", &check_irq);

    /* Anything left over (there should be nothing) is not ours. */
    while (inb(I8042_CMD_PORT) & I8042_STATUS_OBF)
        (void)inb(I8042_DATA_PORT);
    if (check_irq && (pic1_irr() & 0x02)) {
        gprintf("FAIL: ctrl_alt_del: IRQ 1 pending before any key\n");
        return EXIT_FAIL;
    }

    outb(0x20, I8042_CMD_PORT);
    if (!read_answer(&ctr)) {
        gprintf("FAIL: ctrl_alt_del: no answer to command 0x20\n");
        return EXIT_FAIL;
    }
    ctr = (u8)((ctr | I8042_CTR_KBDINT) & ~I8042_CTR_KBDDIS);
    outb(0x60, I8042_CMD_PORT);
    outb(ctr, I8042_DATA_PORT);
    outb(0x20, I8042_CMD_PORT);
    u8 check = 0;
    if (!read_answer(&check) || check != ctr) {
        gprintf("FAIL: ctrl_alt_del: command byte reads back 0x%x, wrote 0x%x\n", check, ctr);
        return EXIT_FAIL;
    }
    gprintf("ready\n");

    while (n < sizeof(expected)) {
        u8 status = inb(I8042_CMD_PORT);
        if (!(status & I8042_STATUS_OBF)) {
            if (timeout && ++polls >= timeout) {
                gprintf("FAIL: ctrl_alt_del: %lu of %lu bytes after %lu polls\n", (u64)n,
                        (u64)sizeof(expected), polls);
                return EXIT_USAGE;
            }
            cpu_pause();
            continue;
        }
        if (status & I8042_STATUS_AUX) {
            gprintf("FAIL: ctrl_alt_del: byte %lu came from the AUX port\n", (u64)n);
            ok = 0;
        }
        got[n++] = inb(I8042_DATA_PORT);
    }
    gprintf("ctrl_alt_del: got");
    for (size_t i = 0; i < n; i++)
        gprintf(" %02x", got[i]);
    gprintf("\n");
    for (size_t i = 0; i < n; i++) {
        if (got[i] != expected[i]) {
            gprintf("FAIL: ctrl_alt_del: byte %lu is 0x%x, want 0x%x\n", (u64)i, got[i],
                    expected[i]);
            ok = 0;
        }
    }
    /* Each byte is a VM exit away from the next: the status is settled now. */
    if (inb(I8042_CMD_PORT) & I8042_STATUS_OBF) {
        gprintf("FAIL: ctrl_alt_del: more bytes after the sequence (0x%x)\n",
                inb(I8042_DATA_PORT));
        ok = 0;
    }
    if (check_irq) {
        if (pic1_irr() & 0x02) {
            gprintf("ctrl_alt_del: IRQ 1 pending\n");
        } else {
            gprintf("FAIL: ctrl_alt_del: IRQ 1 was never raised\n");
            ok = 0;
        }
    }
    gprintf("ctrl_alt_del: %s\n", ok ? "PASS" : "FAIL");
    return ok ? EXIT_PASS : EXIT_FAIL;
}
