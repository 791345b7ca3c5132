/* hello: the smallest useful guest.  Prints which boot protocol was used,
 * marks the boot timer and exits 0. */
#include "runtime.h"

int guest_main(const struct boot_info *bi)
{
    gprintf("Hello from test guest (%s)\n", bi->proto_name);
    boot_timer_mark();
    return EXIT_PASS;
}
