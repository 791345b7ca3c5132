/* i8042_reset: requests a reset by writing 0xFE (pulse reset line) to the
 * i8042 command port 0x64.  The VMM is expected to exit 0.  If the guest is
 * still running after a bounded wait it prints FAIL and exits 1. */
#include "runtime.h"

int guest_main(const struct boot_info *bi)
{
    (void)bi;
    gprintf("i8042_reset: writing 0xfe to port 0x64\n");
    outb(0xfe, I8042_CMD_PORT);
    /* Give an asynchronous reset a chance: each status read is a VM exit. */
    for (int i = 0; i < 1000; i++)
        (void)inb(I8042_CMD_PORT);
    gprintf("FAIL: i8042_reset: reset request was ignored\n");
    return EXIT_FAIL;
}
