/* exit_code: exits with the status given by exit=N (0..255) on the cmdline.
 * Without a valid exit= token it prints a FAIL line and exits 2. */
#include "runtime.h"

int guest_main(const struct boot_info *bi)
{
    u64 n;
    (void)bi;
    if (!cmdline_get_u64("exit", &n) || n > 255) {
        gprintf("FAIL: exit_code: missing or invalid exit=N token (0..255)\n");
        return EXIT_USAGE;
    }
    gprintf("exit_code: exiting with status %lu\n", n);
    return (int)n;
}
