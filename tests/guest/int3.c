/* int3: installs a #BP (vector 3) interrupt-gate handler, executes a
 * one-byte int3 (0xCC) and checks that the handler ran exactly once, saw
 * the RIP of the byte right after the int3 and our CS, and that execution
 * resumed after iretq.  Prints "int3: PASS" (exit 0) or FAIL lines and
 * "int3: FAIL" (exit 1).  Any other exception exits 3. */
#include "runtime.h"

volatile u64 bp_count, bp_rip, bp_cs, bp_rflags;
void bp_handler(void);

/* Frame on entry (no error code for #BP): RIP, CS, RFLAGS, RSP, SS. */
__asm__(".text\n"
        ".globl bp_handler\n"
        "bp_handler:\n"
        "  pushq %rax\n"
        "  incq bp_count(%rip)\n"
        "  movq 8(%rsp), %rax\n"
        "  movq %rax, bp_rip(%rip)\n"
        "  movq 16(%rsp), %rax\n"
        "  movq %rax, bp_cs(%rip)\n"
        "  movq 24(%rsp), %rax\n"
        "  movq %rax, bp_rflags(%rip)\n"
        "  popq %rax\n"
        "  iretq\n");

int guest_main(const struct boot_info *bi)
{
    u64 after, marker = 0;
    int fails = 0;
    (void)bi;
    idt_set_gate(3, bp_handler);
    idt_reload();
    gprintf("int3: executing int3\n");
    __asm__ volatile("int3\n"
                     "1:\n\t"
                     "leaq 1b(%%rip), %0\n\t"
                     "movq $0x1234, %1\n"
                     : "=r"(after), "=r"(marker)
                     :
                     : "memory");
    if (bp_count != 1) {
        gprintf("FAIL: int3: handler ran %lu times (expected 1)\n", bp_count);
        fails++;
    }
    if (bp_rip != after) {
        gprintf("FAIL: int3: saved RIP 0x%lx, expected 0x%lx (byte after int3)\n", bp_rip, after);
        fails++;
    }
    if (bp_cs != read_cs()) {
        gprintf("FAIL: int3: saved CS 0x%lx, expected 0x%x\n", bp_cs, read_cs());
        fails++;
    }
    if (marker != 0x1234) {
        gprintf("FAIL: int3: execution did not resume after int3\n");
        fails++;
    }
    if (fails) {
        gprintf("int3: FAIL\n");
        return EXIT_FAIL;
    }
    gprintf("int3: handler ran once, saved RIP 0x%lx == 0x%lx\n", bp_rip, after);
    gprintf("int3: PASS\n");
    return EXIT_PASS;
}
