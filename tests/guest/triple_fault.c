/* triple_fault: loads an empty (limit 0) IDT and executes ud2.  #UD cannot
 * be delivered -> #GP -> #DF -> triple fault (shutdown).  The VMM is expected
 * to treat that as a machine reset/shutdown and exit 0.  If execution ever
 * continues past ud2 the guest prints FAIL and exits 1. */
#include "runtime.h"

int guest_main(const struct boot_info *bi)
{
    struct desc_ptr empty = {.limit = 0, .base = 0};
    (void)bi;
    gprintf("triple_fault: loading empty IDT and executing ud2\n");
    lidt(&empty);
    __asm__ volatile("ud2" ::: "memory");
    gprintf("FAIL: triple_fault: still running after ud2\n");
    return EXIT_FAIL;
}
