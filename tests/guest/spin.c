/* spin: prints "spinning", marks the boot timer, then halts forever with
 * interrupts off (cli; hlt; jmp).  Never exits by itself: used by VMM tests
 * that stop a running guest (e.g. SIGTERM). */
#include "runtime.h"

int guest_main(const struct boot_info *bi)
{
    (void)bi;
    gprintf("spinning\n");
    boot_timer_mark();
    for (;;)
        __asm__ volatile("cli\n\thlt" ::: "memory");
}
