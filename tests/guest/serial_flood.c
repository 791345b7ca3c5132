/* serial_flood: writes bytes=N characters (default 20000) to COM1 the way
 * Linux's 8250 console does (an LSR read, then a THR write, per byte), in
 * lines of 64, then exits 0. tools/bench times it against bytes=0 for the
 * cost of a byte of serial console output. */
#include "runtime.h"

int guest_main(const struct boot_info *bi)
{
    u64 n = 20000;
    size_t len;
    (void)bi;
    if (cmdline_get("bytes", &len) && (!cmdline_get_u64("bytes", &n) || n > 100000000)) {
        gprintf("FAIL: serial_flood: invalid bytes=N token (0..100000000)\n");
        return EXIT_USAGE;
    }
    for (u64 i = 0; i < n; i++)
        serial_putc(i % 64 == 63 ? '\n' : (char)('a' + i % 26));
    return EXIT_PASS;
}
