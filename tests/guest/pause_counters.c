/*
 * pause_counters: every CPU counts in a tight loop while the host pauses
 * and resumes the VM (KVM state read and written back in between); a lost
 * or corrupted register, flag, RIP or memory word shows up as a mismatch.
 *
 * All cpus=N CPUs are started as in smp (lib/smp_boot.c).  Each runs
 * pc_loop() (assembly below) on its own struct pc_cpu: per iteration it
 * checks
 *   - RFLAGS: CF, PF, ZF, SF, OF all still set (set once with popfq; the
 *     loop only uses instructions that leave the flags alone: mov, lea,
 *     not, jcc, jrcxz, jmp),
 *   - the 64-bit counter in memory == the register copy in R8,
 *   - R9 == ~R8 and R10 == 3 * R8 + 0x12345678 (derived copies),
 *   - RBX, RBP, R11..R15 == per-CPU constants, RSP == its value at entry,
 * then increments R8 (and R9, R10) and stores R8 to the memory counter.
 * A failed check stores which one, the flags and the registers and stops
 * that CPU's loop.  The BSP runs the same loop in chunks of `chunk`
 * iterations, and between chunks looks at the TSC.
 *
 * Time: the TSC frequency comes from CPUID 0x15, else the hypervisor
 * timing leaf 0x40000010, else 0x16, else 2 GHz is assumed (printed).
 * Tick intervals are measured in guest running time: a TSC step of more
 * than jump_ms between two polls of the BSP (the VM was paused, the TSC
 * was written back, or the vCPU thread was descheduled for long) counts as
 * only jump_ms, so a pause never makes a tick come early.  Every tick_ms of running time the
 * BSP prints "pause_counters: tick T total C" (C = sum of all counters).
 * A CPU whose counter does not move for stall_ticks consecutive ticks
 * fails (each tick without progress prints an info line).  After `ticks`
 * ticks the BSP stops all loops, checks that each memory counter equals
 * the register copy the loop returned, prints one line per CPU and
 * "pause_counters: PASS" (exit 0), else "FAIL: ..." lines and
 * "pause_counters: FAIL" (exit 1); 2 for a bad cpus= value.
 *
 * Cmdline: cpus=N, ticks=N (30), tick_ms=N (100), stall_ticks=N (3),
 * jump_ms=N (tick_ms / 4, at least 1), chunk=N (64), ap_timeout_ms=N;
 * selftest_corrupt=1 flips a bit of the last CPU's memory counter at tick
 * 2 (the run must then FAIL with a "check 2" mismatch report).
 */
#include "smp_boot.h"

/* struct pc_cpu offsets used by the assembly */
#define PC_COUNTER 0
#define PC_STOP 8
#define PC_FAIL_CODE 16
#define PC_FAIL_LOCAL 24
#define PC_FAIL_MEM 32
#define PC_FAIL_FLAGS 40
#define PC_PAT 48   /* 7 x u64: expected RBX RBP R11 R12 R13 R14 R15 */
#define PC_DUMP 104 /* 11 x u64 at a failure: RBX RBP R9 R10 R11 R12 R13 R14 R15 RSP RSI(expected RSP) */

#define NPAT 7
#define NDUMP 11

struct pc_cpu {
    volatile u64 counter;
    volatile u64 stop;
    volatile u64 fail_code;
    volatile u64 fail_local;
    volatile u64 fail_mem;
    volatile u64 fail_flags;
    u64 pat[NPAT];
    volatile u64 dump[NDUMP];
    volatile u64 final_local;
    volatile u32 started, stopped;
} __attribute__((aligned(64)));

_Static_assert(__builtin_offsetof(struct pc_cpu, stop) == PC_STOP, "PC_STOP");
_Static_assert(__builtin_offsetof(struct pc_cpu, fail_code) == PC_FAIL_CODE, "PC_FAIL_CODE");
_Static_assert(__builtin_offsetof(struct pc_cpu, fail_local) == PC_FAIL_LOCAL, "PC_FAIL_LOCAL");
_Static_assert(__builtin_offsetof(struct pc_cpu, fail_mem) == PC_FAIL_MEM, "PC_FAIL_MEM");
_Static_assert(__builtin_offsetof(struct pc_cpu, fail_flags) == PC_FAIL_FLAGS, "PC_FAIL_FLAGS");
_Static_assert(__builtin_offsetof(struct pc_cpu, pat) == PC_PAT, "PC_PAT");
_Static_assert(__builtin_offsetof(struct pc_cpu, dump) == PC_DUMP, "PC_DUMP");

/* u64 pc_loop(struct pc_cpu *c, u64 local, u64 chunk): counts from `local`
 * (which must equal c->counter) until c->stop is set or `chunk` iterations
 * are done (chunk 0: no limit) or a check fails (c->fail_code set).
 * Returns the register copy of the counter. */
u64 pc_loop(struct pc_cpu *c, u64 local, u64 chunk);

#define S_(x) #x
#define S(x) S_(x)
/* Check that REG equals the u64 at OFF(%rdi); failure code CODE. */
#define CHECK_PAT(reg, off, code)                                                                       \
    "	movq	" S(off) "(%rdi), %rcx\n"                                                                \
    "	notq	%rcx\n"                                                                                  \
    "	leaq	1(%rcx," reg "), %rcx\n" /* reg - expected */                                             \
    "	jrcxz	1f\n"                                                                                    \
    "	movl	$" S(code) ", %eax\n"                                                                     \
    "	jmp	pc_fail\n"                                                                                  \
    "1:\n"

__asm__(
    "	.text\n"
    "	.globl	pc_loop\n"
    "	.type	pc_loop, @function\n"
    "pc_loop:\n"
    "	pushq	%rbx\n"
    "	pushq	%rbp\n"
    "	pushq	%r12\n"
    "	pushq	%r13\n"
    "	pushq	%r14\n"
    "	pushq	%r15\n"
    "	movq	%rsi, %r8\n"                    /* R8 = register copy of the counter */
    "	movq	%rsi, %r9\n"
    "	notq	%r9\n"                          /* R9 = ~R8 */
    "	leaq	0x12345678(%rsi,%rsi,2), %r10\n" /* R10 = 3 * R8 + K */
    "	movq	" S(PC_PAT) "+0(%rdi), %rbx\n"
    "	movq	" S(PC_PAT) "+8(%rdi), %rbp\n"
    "	movq	" S(PC_PAT) "+16(%rdi), %r11\n"
    "	movq	" S(PC_PAT) "+24(%rdi), %r12\n"
    "	movq	" S(PC_PAT) "+32(%rdi), %r13\n"
    "	movq	" S(PC_PAT) "+40(%rdi), %r14\n"
    "	movq	" S(PC_PAT) "+48(%rdi), %r15\n"
    "	movq	%rsp, %rsi\n"                   /* RSI = expected RSP */
    "	pushq	$0x8d7\n"                       /* CF PF AF ZF SF OF + bit 1; IF, DF, TF clear */
    "	popfq\n"
    "pc_top:\n"
    "	jnc	pc_flags\n"
    "	jnz	pc_flags\n"
    "	jns	pc_flags\n"
    "	jno	pc_flags\n"
    "	jnp	pc_flags\n"
    /* memory counter == R8 */
    "	movq	" S(PC_COUNTER) "(%rdi), %rcx\n"
    "	notq	%rcx\n"
    "	leaq	1(%rcx,%r8), %rcx\n"
    "	jrcxz	1f\n"
    "	movl	$2, %eax\n"
    "	jmp	pc_fail\n"
    "1:\n"
    /* R9 == ~R8  <=>  R9 + R8 + 1 == 0 */
    "	leaq	1(%r9,%r8), %rcx\n"
    "	jrcxz	1f\n"
    "	movl	$3, %eax\n"
    "	jmp	pc_fail\n"
    "1:\n"
    /* R10 == 3 * R8 + K */
    "	leaq	0x12345678(%r8,%r8,2), %rcx\n"
    "	notq	%rcx\n"
    "	leaq	1(%rcx,%r10), %rcx\n"
    "	jrcxz	1f\n"
    "	movl	$4, %eax\n"
    "	jmp	pc_fail\n"
    "1:\n"
    CHECK_PAT("%rbx", PC_PAT + 0, 5)
    CHECK_PAT("%rbp", PC_PAT + 8, 6)
    CHECK_PAT("%r11", PC_PAT + 16, 7)
    CHECK_PAT("%r12", PC_PAT + 24, 8)
    CHECK_PAT("%r13", PC_PAT + 32, 9)
    CHECK_PAT("%r14", PC_PAT + 40, 10)
    CHECK_PAT("%r15", PC_PAT + 48, 11)
    /* RSP == RSI */
    "	movq	%rsp, %rcx\n"
    "	notq	%rcx\n"
    "	leaq	1(%rcx,%rsi), %rcx\n"
    "	jrcxz	1f\n"
    "	movl	$12, %eax\n"
    "	jmp	pc_fail\n"
    "1:\n"
    /* count */
    "	leaq	1(%r8), %r8\n"
    "	leaq	-1(%r9), %r9\n"
    "	leaq	3(%r10), %r10\n"
    "	movq	%r8, " S(PC_COUNTER) "(%rdi)\n"
    /* stop requested? */
    "	movq	" S(PC_STOP) "(%rdi), %rcx\n"
    "	jrcxz	1f\n"
    "	jmp	pc_out\n"
    "1:\n"
    /* chunk done? */
    "	leaq	-1(%rdx), %rdx\n"
    "	movq	%rdx, %rcx\n"
    "	jrcxz	pc_out\n"
    "	jmp	pc_top\n"
    "pc_flags:\n"
    "	movl	$1, %eax\n"
    "pc_fail:\n"
    "	pushfq\n"
    "	popq	%rcx\n"
    "	movq	%rcx, " S(PC_FAIL_FLAGS) "(%rdi)\n"
    "	movq	%r8, " S(PC_FAIL_LOCAL) "(%rdi)\n"
    "	movq	" S(PC_COUNTER) "(%rdi), %rcx\n"
    "	movq	%rcx, " S(PC_FAIL_MEM) "(%rdi)\n"
    "	movq	%rbx, " S(PC_DUMP) "+0(%rdi)\n"
    "	movq	%rbp, " S(PC_DUMP) "+8(%rdi)\n"
    "	movq	%r9, " S(PC_DUMP) "+16(%rdi)\n"
    "	movq	%r10, " S(PC_DUMP) "+24(%rdi)\n"
    "	movq	%r11, " S(PC_DUMP) "+32(%rdi)\n"
    "	movq	%r12, " S(PC_DUMP) "+40(%rdi)\n"
    "	movq	%r13, " S(PC_DUMP) "+48(%rdi)\n"
    "	movq	%r14, " S(PC_DUMP) "+56(%rdi)\n"
    "	movq	%r15, " S(PC_DUMP) "+64(%rdi)\n"
    "	movq	%rsp, " S(PC_DUMP) "+72(%rdi)\n"
    "	movq	%rsi, " S(PC_DUMP) "+80(%rdi)\n"
    "	movq	%rax, " S(PC_FAIL_CODE) "(%rdi)\n"
    "	movq	%rsi, %rsp\n" /* back to the entry RSP for the pops */
    "pc_out:\n"
    "	movq	%r8, %rax\n"
    "	pushq	$2\n"
    "	popfq\n"
    "	popq	%r15\n"
    "	popq	%r14\n"
    "	popq	%r13\n"
    "	popq	%r12\n"
    "	popq	%rbp\n"
    "	popq	%rbx\n"
    "	ret\n"
    "	.size	pc_loop, . - pc_loop\n");

static const char *const check_names[] = {
    "?",
    "RFLAGS (CF/PF/ZF/SF/OF no longer all set)",
    "memory counter != register copy (R8)",
    "R9 != ~R8",
    "R10 != 3 * R8 + 0x12345678",
    "RBX changed",
    "RBP changed",
    "R11 changed",
    "R12 changed",
    "R13 changed",
    "R14 changed",
    "R15 changed",
    "RSP changed",
};
static const char *const dump_names[NDUMP] = {"rbx", "rbp", "r9", "r10", "r11", "r12",
                                              "r13", "r14", "r15", "rsp", "rsp_expected"};

static struct pc_cpu g_pc[SMP_MAX_CPUS];
static int g_ncpus;

static void pc_ap(int idx)
{
    struct pc_cpu *c = &g_pc[idx];
    c->started = 1;
    u64 local = pc_loop(c, 0, 0);
    c->final_local = local;
    __asm__ volatile("" ::: "memory");
    c->stopped = 1;
}

static int report_mismatch(int i)
{
    struct pc_cpu *c = &g_pc[i];
    u64 code = c->fail_code;
    if (!code)
        return 0;
    smp_print_lock();
    gprintf("FAIL: pause_counters: cpu %d: check %lu failed: %s; register copy %lu, memory counter %lu, "
            "rflags 0x%lx\n",
            i, code, code < ARRAY_SIZE(check_names) ? check_names[code] : "?", c->fail_local, c->fail_mem,
            c->fail_flags);
    gprintf("FAIL: pause_counters: cpu %d: registers:", i);
    for (int k = 0; k < NDUMP; k++)
        gprintf(" %s=0x%lx", dump_names[k], c->dump[k]);
    gprintf("; expected rbx rbp r11..r15 =");
    for (int k = 0; k < NPAT; k++)
        gprintf(" 0x%lx", c->pat[k]);
    gprintf("\n");
    smp_print_unlock();
    return 1;
}

/* selftest_corrupt=1: at tick 2 flip bit 40 of cpu idx's memory counter
 * behind its back until its loop notices (the loop's own store may
 * overwrite the flip first, so it is retried). */
static void corrupt_counter(int idx, u64 *bsp_local)
{
    struct pc_cpu *c = &g_pc[idx];
    smp_printf("pause_counters: selftest: corrupting cpu %d's memory counter\n", idx);
    for (int i = 0; i < 100000 && !c->fail_code; i++) {
        c->counter ^= 1UL << 40;
        if (idx == 0)
            *bsp_local = pc_loop(c, *bsp_local, 1);
        else
            for (int k = 0; k < 100 && !c->fail_code; k++)
                cpu_pause();
    }
}

static u64 knob(const char *key, u64 def, u64 min, u64 max)
{
    u64 v;
    if (!cmdline_get_u64(key, &v))
        return def;
    return v < min ? min : v > max ? max : v;
}

int guest_main(const struct boot_info *bi)
{
    (void)bi;
    const char *src;
    g_ncpus = smp_expected_cpus("pause_counters", &src);
    if (!g_ncpus)
        return EXIT_USAGE;
    u64 ticks = knob("ticks", 30, 1, 1000000);
    u64 tick_ms = knob("tick_ms", 100, 1, 3600000);
    u64 stall_ticks = knob("stall_ticks", 3, 1, 1000000);
    u64 jump_ms = knob("jump_ms", tick_ms / 4 ? tick_ms / 4 : 1, 1, 3600000);
    u64 chunk = knob("chunk", 64, 1, 1UL << 40);
    int selftest = cmdline_has_token("selftest_corrupt=1");

    for (int i = 0; i < g_ncpus; i++)
        for (int k = 0; k < NPAT; k++)
            g_pc[i].pat[k] = (0x0101010101010101UL * (u64)(k + 1)) ^ ((u64)i << 40) ^ 0x8000000000000000UL;

    smp_printf("pause_counters: %d cpus (%s), %lu ticks of %lu ms, stall_ticks %lu, jump_ms %lu, "
               "tsc %lu kHz (%s)\n",
               g_ncpus, src, ticks, tick_ms, stall_ticks, jump_ms, tsc_khz(), tsc_khz_source());

    int running = smp_start_aps(g_ncpus, pc_ap, "pause_counters", 0);
    int failed = running != g_ncpus;
    if (failed)
        smp_printf("FAIL: pause_counters: %d of %d cpus started\n", running, g_ncpus);

    struct pc_cpu *bsp = &g_pc[0];
    u64 local = 0;
    u64 prev[SMP_MAX_CPUS], stall[SMP_MAX_CPUS] = {0}, no_progress = 0;
    for (int i = 0; i < g_ncpus; i++)
        prev[i] = g_pc[i].counter;
    smp_printf("pause_counters: %d cpus counting\n", running);

    struct tclock clk;
    tclock_start(&clk, jump_ms);
    u64 tick_len = ms_to_tsc(tick_ms);
    u64 next = tick_len;
    u64 t;
    for (t = 1; t <= ticks && !failed; t++) {
        while (tclock_poll(&clk) < next) {
            local = pc_loop(bsp, local, chunk);
            for (int i = 0; i < running; i++)
                if (g_pc[i].fail_code)
                    failed = 1;
            if (failed)
                break;
        }
        if (failed)
            break;
        next = clk.elapsed + tick_len;
        if (selftest && t == 2)
            corrupt_counter(running - 1, &local);
        u64 total = 0, cur[SMP_MAX_CPUS];
        for (int i = 0; i < running; i++) {
            cur[i] = g_pc[i].counter;
            total += cur[i];
        }
        smp_printf("pause_counters: tick %lu total %lu\n", t, total);
        for (int i = 0; i < running; i++) {
            if (cur[i] == prev[i]) {
                stall[i]++;
                no_progress++;
                smp_printf("pause_counters: tick %lu cpu %d no progress (%lu tick(s) in a row)\n", t, i, stall[i]);
                if (stall[i] >= stall_ticks) {
                    smp_printf("FAIL: pause_counters: cpu %d counter stuck at %lu for %lu ticks\n", i, cur[i],
                               stall[i]);
                    failed = 1;
                }
            } else {
                stall[i] = 0;
            }
            prev[i] = cur[i];
        }
    }

    /* Stop every loop and wait (running time, bounded) for the APs. */
    for (int i = 1; i < running; i++)
        g_pc[i].stop = 1;
    struct tclock wc;
    tclock_start(&wc, 100);
    for (int i = 1; i < running; i++) {
        while (!g_pc[i].stopped && !g_pc[i].fail_code && tclock_poll(&wc) < ms_to_tsc(2000))
            cpu_pause();
        if (!g_pc[i].stopped && !g_pc[i].fail_code) {
            smp_printf("FAIL: pause_counters: cpu %d did not stop within 2000 ms (counter %lu)\n", i,
                       g_pc[i].counter);
            failed = 1;
        }
    }
    bsp->final_local = local;
    bsp->stopped = 1;

    u64 total = 0;
    for (int i = 0; i < running; i++) {
        struct pc_cpu *c = &g_pc[i];
        if (report_mismatch(i)) {
            failed = 1;
            continue;
        }
        total += c->counter;
        if (c->stopped && c->counter != c->final_local) {
            smp_printf("FAIL: pause_counters: cpu %d memory counter %lu != final register copy %lu\n", i,
                       c->counter, c->final_local);
            failed = 1;
        }
        if (c->counter == 0) {
            smp_printf("FAIL: pause_counters: cpu %d never counted\n", i);
            failed = 1;
        }
        smp_printf("pause_counters: cpu %d count %lu\n", i, c->counter);
    }
    smp_printf("pause_counters: %lu ticks, total %lu, %lu tick(s) without progress on some cpu, %lu TSC step(s) "
               "over jump_ms clamped (largest %lu ms)\n",
               t - 1, total, no_progress, clk.jumps, tsc_to_ms(clk.max_jump));
    smp_printf("pause_counters: %s\n", failed ? "FAIL" : "PASS");
    return failed ? EXIT_FAIL : EXIT_PASS;
}
