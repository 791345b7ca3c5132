/* unemulated: executes cmpxchg16b, which KVM's instruction emulator lacks.
 * On a PVM host the VMM must stop with a report naming the instruction
 * bytes (exit status 3); natively the instruction simply runs (exit 0). */
#include "runtime.h"

static volatile unsigned long long pair[2] __attribute__((aligned(16)));

int guest_main(const struct boot_info* bi) {
    (void)bi;
    unsigned long long lo = 0, hi = 0;
    gprintf("unemulated: executing cmpxchg16b\n");
    __asm__ volatile("lock cmpxchg16b %2"
                     : "+a"(lo), "+d"(hi), "+m"(pair[0])
                     : "b"(1ULL), "c"(2ULL)
                     : "memory", "cc");
    gprintf("unemulated: cmpxchg16b ran (pair = %lu %lu)\n", (unsigned long)pair[0],
            (unsigned long)pair[1]);
    return (pair[0] == 1 && pair[1] == 2) ? EXIT_PASS : EXIT_FAIL;
}
