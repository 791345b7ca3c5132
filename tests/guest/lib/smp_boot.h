/*
 * Multiprocessor support for the test guests (smp, pause_counters): xAPIC
 * access, TSC timing that tolerates host pauses, a print lock, and starting
 * the application processors with INIT-SIPI-SIPI through the real-mode
 * trampoline in lib/ap_trampoline.S.
 *
 * Model: cpu index i (0 = the BSP) is the CPU with APIC ID i.  The BSP
 * starts the APs one after another (i = 1..n-1); each AP goes real mode ->
 * protected mode -> long mode on the BSP's page tables (CR3), CR0/CR4/EFER
 * and GDT, gets its own 16-byte aligned stack from smp_ap_stacks, loads the
 * runtime's IDT (so exceptions are reported as on the BSP) and calls the
 * guest's AP function with its index.  If that returns, the AP halts with
 * interrupts off.  The LAPIC is used in xAPIC mode (MMIO at 0xfee00000).
 */
#ifndef TEST_GUEST_SMP_BOOT_H
#define TEST_GUEST_SMP_BOOT_H

#include "runtime.h"
#include "smp_layout.h"

#define SMP_MAX_CPUS 32
#define AP_STACK_SIZE 8192

/* ---- xAPIC ---- */
#define LAPIC_DEFAULT_BASE 0xfee00000UL
#define LAPIC_ID 0x020
#define LAPIC_VERSION 0x030
#define LAPIC_SVR 0x0f0
#define LAPIC_ESR 0x280
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_SVR_ENABLE (1u << 8)
#define ICR_DELIVERY_PENDING (1u << 12)
#define ICR_INIT 0x00000500u    /* delivery mode 101 */
#define ICR_STARTUP 0x00000600u /* delivery mode 110, vector = page number */
#define ICR_LEVEL_ASSERT 0x00004000u
#define MSR_APIC_BASE 0x1b
#define APIC_BASE_BSP (1UL << 8)
#define APIC_BASE_X2APIC (1UL << 10)
#define APIC_BASE_ENABLE (1UL << 11)
#define APIC_BASE_ADDR_MASK 0x000ffffffffff000UL

static inline u32 lapic_read(u32 reg) { return *(volatile u32 *)(LAPIC_DEFAULT_BASE + reg); }
static inline void lapic_write(u32 reg, u32 v) { *(volatile u32 *)(LAPIC_DEFAULT_BASE + reg) = v; }
/* xAPIC ID register, bits 31:24. */
static inline u32 lapic_id(void) { return lapic_read(LAPIC_ID) >> 24; }
/* Software-enables this CPU's LAPIC (SVR bit 8, spurious vector 0xff) in
 * xAPIC mode.  Returns 0, or -1 with a "FAIL: who: ..." line when the APIC
 * is globally disabled, in x2APIC mode or not at 0xfee00000. */
int lapic_enable(const char *who);

/* ---- TSC ---- */
static inline u64 rdtsc(void)
{
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return ((u64)hi << 32) | lo;
}
/* TSC frequency: CPUID leaf 0x15 (crystal * EBX / EAX, all three non-zero),
 * else the hypervisor timing leaf 0x40000010 EAX (kHz, non-zero), else leaf
 * 0x16 EAX (base frequency in MHz, non-zero), else 2 GHz assumed.
 * tsc_khz_source() names the source ("cpuid 0x15", "cpuid 0x40000010",
 * "cpuid 0x16", "assumed 2 GHz"). */
u64 tsc_khz(void);
const char *tsc_khz_source(void);
static inline u64 ms_to_tsc(u64 ms) { return ms * tsc_khz(); }
static inline u64 tsc_to_ms(u64 t) { return t / tsc_khz(); }

/* A clock of guest running time: the sum of TSC steps between successive
 * polls, where a step larger than `cap` counts as a time jump (the VM was
 * paused, its TSC written back, or the vCPU thread descheduled for long)
 * and adds only `cap`, a negative step nothing.  Poll it often (much more
 * often than cap). */
struct tclock {
    u64 last, elapsed, cap;
    u64 jumps, max_jump; /* steps clamped to cap, largest one (TSC ticks) */
};
void tclock_start(struct tclock *c, u64 cap_ms);
u64 tclock_poll(struct tclock *c); /* elapsed running time in TSC ticks */
/* Busy-waits us microseconds of running time (steps clamped to 50 ms). */
void tsc_delay_us(u64 us);

/* ---- atomics and the print lock ---- */
static inline u32 atomic_inc_return(volatile u32 *p)
{
    u32 v = 1;
    __asm__ volatile("lock xaddl %0, %1" : "+r"(v), "+m"(*p) : : "memory", "cc");
    return v + 1;
}
static inline void spin_lock(volatile u32 *l)
{
    for (;;) {
        u32 v = 1;
        __asm__ volatile("xchgl %0, %1" : "+r"(v), "+m"(*l) : : "memory");
        if (v == 0)
            return;
        while (*l)
            cpu_pause();
    }
}
static inline void spin_unlock(volatile u32 *l)
{
    __asm__ volatile("" ::: "memory");
    *l = 0;
}
/* gprintf under a lock shared by all CPUs, so lines do not interleave. */
void smp_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same lock, for several lines in one block (print with gprintf inside;
 * smp_printf would deadlock). */
void smp_print_lock(void);
void smp_print_unlock(void);

/* ---- starting the APs ---- */
/* The number of CPUs to expect: cmdline cpus=N (1..SMP_MAX_CPUS).  Without
 * the token, CPUID leaf 0xB level 1 (logical processors in the package), or
 * leaf 1 EBX[23:16] when HTT is set, else 1; *source says which.  Returns
 * the count, or 0 with a "FAIL: who: ..." line for a bad cpus= value. */
int smp_expected_cpus(const char *who, const char **source);

/* Called on each AP with its index (1..n-1), on its own stack.  When it
 * returns the AP halts (cli; hlt) forever. */
typedef void (*ap_fn_t)(int index);

/* Enables the BSP's LAPIC, copies the trampoline to AP_TRAMP_BASE and starts
 * CPUs 1..n-1 in order (APIC ID = index): INIT, 10 ms, STARTUP, 200 us,
 * STARTUP, 200 us (delays doubled when the TSC frequency is only assumed),
 * then waits up to ap_timeout_ms=N (default 5000) of running time for the
 * AP to reach its C entry (stage 4) -- and with wait_done also for fn to
 * call smp_ap_done() (stage 5), so the APs report in order -- before
 * starting the next.  On a failure it prints "FAIL: who: cpu I ..." (with
 * the trampoline stage the AP reached) and starts no further CPUs.  Returns
 * the number of CPUs running (1 + APs that reached fn). */
int smp_start_aps(int n, ap_fn_t fn, const char *who, int wait_done);
/* Called by an AP's fn: lets smp_start_aps(..., wait_done = 1) go on. */
void smp_ap_done(int index);

/* Stage each AP reached (APP_STAGE values, 4 = C entry, 5 = done), for reports. */
extern volatile u32 smp_ap_stage[SMP_MAX_CPUS];

/* Stacks of the APs (index 0 unused: the BSP has the runtime's stack). */
extern u8 smp_ap_stacks[SMP_MAX_CPUS][AP_STACK_SIZE];

/* Minimal CPUID topology (leaf 0xB) helpers. */
struct cpu_topo_level {
    u32 shift; /* EAX[4:0]: x2APIC ID bits to shift to the next level */
    u32 count; /* EBX[15:0]: logical processors at this level */
    u32 type;  /* ECX[15:8]: 1 SMT, 2 core, 0 invalid */
    u32 x2apic_id;
};
/* Reads subleaf `level` of leaf 0xB; returns 0 if leaf 0xB is not
 * available (max basic leaf < 0xB or subleaf 0 reports EBX = 0). */
int cpuid_topo(u32 level, struct cpu_topo_level *out);
static inline u32 bits_for_count(u32 n)
{
    u32 b = 0;
    while ((1u << b) < n)
        b++;
    return b;
}

#endif
