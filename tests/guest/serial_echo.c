/* serial_echo: prints "ready", reads bytes from COM1 (polling LSR.DR) until
 * '\n' or '\r', then prints "echo: <line>" and exits 0.  Lines longer than
 * 255 bytes are truncated (the rest is still consumed up to the newline).
 * Optional echo_timeout=N: give up after N empty LSR polls (exit 2). */
#include "runtime.h"

int guest_main(const struct boot_info *bi)
{
    char line[256];
    size_t n = 0;
    u64 timeout = 0, polls = 0;
    (void)bi;
    cmdline_get_u64("echo_timeout", &timeout);
    gprintf("ready\n");
    for (;;) {
        if (!serial_data_ready()) {
            if (timeout && ++polls >= timeout) {
                gprintf("FAIL: serial_echo: no complete line after %lu polls\n", polls);
                return EXIT_USAGE;
            }
            cpu_pause();
            continue;
        }
        char c = (char)inb(COM1_PORT);
        if (c == '\n' || c == '\r')
            break;
        if (n < sizeof(line) - 1)
            line[n++] = c;
    }
    line[n] = 0;
    gprintf("echo: %s\n", line);
    return EXIT_PASS;
}
