/* Multiprocessor support of the test guests: see smp_boot.h. */
#include "smp_boot.h"

extern const char ap_tramp_start[], ap_tramp_end[];

u8 smp_ap_stacks[SMP_MAX_CPUS][AP_STACK_SIZE] __attribute__((aligned(16)));
volatile u32 smp_ap_stage[SMP_MAX_CPUS];

static ap_fn_t g_ap_fn;
static volatile u32 g_print_lock;

/* ------------------------------------------------------------------ */
/* print lock                                                          */
/* ------------------------------------------------------------------ */
void smp_print_lock(void) { spin_lock(&g_print_lock); }
void smp_print_unlock(void) { spin_unlock(&g_print_lock); }

void smp_printf(const char *fmt, ...)
{
    va_list ap;
    spin_lock(&g_print_lock);
    va_start(ap, fmt);
    gvprintf(fmt, ap);
    va_end(ap);
    spin_unlock(&g_print_lock);
}

/* ------------------------------------------------------------------ */
/* TSC                                                                 */
/* ------------------------------------------------------------------ */
static u64 g_tsc_khz;
static const char *g_tsc_source;

static void tsc_init(void)
{
    u32 a, b, c, d, max;
    cpuid(0, 0, &max, &b, &c, &d);
    if (max >= 0x15) {
        cpuid(0x15, 0, &a, &b, &c, &d);
        if (a && b && c) {
            g_tsc_khz = (u64)c * b / a / 1000;
            g_tsc_source = "cpuid 0x15";
        }
    }
    if (!g_tsc_khz) {
        /* The hypervisor timing leaf (VMware's, also offered by QEMU and
         * our VMM): EAX = TSC frequency in kHz. */
        u32 hmax;
        cpuid(0x40000000, 0, &hmax, &b, &c, &d);
        if (hmax >= 0x40000010 && hmax < 0x40010000) {
            cpuid(0x40000010, 0, &a, &b, &c, &d);
            if (a) {
                g_tsc_khz = a;
                g_tsc_source = "cpuid 0x40000010";
            }
        }
    }
    if (!g_tsc_khz && max >= 0x16) {
        cpuid(0x16, 0, &a, &b, &c, &d);
        if (a & 0xffff) {
            g_tsc_khz = (u64)(a & 0xffff) * 1000;
            g_tsc_source = "cpuid 0x16";
        }
    }
    if (!g_tsc_khz) {
        g_tsc_khz = 2000000;
        g_tsc_source = "assumed 2 GHz";
    }
}

u64 tsc_khz(void)
{
    if (!g_tsc_khz)
        tsc_init();
    return g_tsc_khz;
}

const char *tsc_khz_source(void)
{
    tsc_khz();
    return g_tsc_source;
}

void tclock_start(struct tclock *c, u64 cap_ms)
{
    c->cap = ms_to_tsc(cap_ms ? cap_ms : 1);
    c->elapsed = 0;
    c->jumps = 0;
    c->max_jump = 0;
    c->last = rdtsc();
}

u64 tclock_poll(struct tclock *c)
{
    u64 now = rdtsc();
    s64 step = (s64)(now - c->last);
    c->last = now;
    if (step < 0 || (u64)step > c->cap) {
        c->jumps++;
        u64 mag = step < 0 ? (u64)-step : (u64)step;
        if (mag > c->max_jump)
            c->max_jump = mag;
        if (step > 0)
            c->elapsed += c->cap;
    } else {
        c->elapsed += (u64)step;
    }
    return c->elapsed;
}

void tsc_delay_us(u64 us)
{
    struct tclock c;
    u64 want = us * tsc_khz() / 1000;
    tclock_start(&c, 50);
    while (tclock_poll(&c) < want)
        cpu_pause();
}

/* ------------------------------------------------------------------ */
/* LAPIC                                                               */
/* ------------------------------------------------------------------ */
int lapic_enable(const char *who)
{
    u64 base = rdmsr(MSR_APIC_BASE);
    if (!(base & APIC_BASE_ENABLE)) {
        gprintf("FAIL: %s: IA32_APIC_BASE=0x%lx: LAPIC globally disabled\n", who, base);
        return -1;
    }
    if (base & APIC_BASE_X2APIC) {
        gprintf("FAIL: %s: IA32_APIC_BASE=0x%lx: already in x2APIC mode (xAPIC expected)\n", who, base);
        return -1;
    }
    if ((base & APIC_BASE_ADDR_MASK) != LAPIC_DEFAULT_BASE) {
        gprintf("FAIL: %s: IA32_APIC_BASE=0x%lx: LAPIC not at 0x%lx\n", who, base, LAPIC_DEFAULT_BASE);
        return -1;
    }
    lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | 0xff);
    return 0;
}

/* Writes the ICR (destination first, the low word sends) and waits, bounded,
 * for the delivery status to return to idle.  0 ok, -1 still pending. */
static int icr_send(u32 apic_id, u32 low)
{
    struct tclock c;
    lapic_write(LAPIC_ICR_HI, apic_id << 24);
    lapic_write(LAPIC_ICR_LO, low);
    tclock_start(&c, 50);
    while (lapic_read(LAPIC_ICR_LO) & ICR_DELIVERY_PENDING) {
        if (tclock_poll(&c) > ms_to_tsc(100))
            return -1;
        cpu_pause();
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* CPUID                                                               */
/* ------------------------------------------------------------------ */
int cpuid_topo(u32 level, struct cpu_topo_level *out)
{
    u32 a, b, c, d, max;
    cpuid(0, 0, &max, &b, &c, &d);
    if (max < 0xb)
        return 0;
    cpuid(0xb, 0, &a, &b, &c, &d);
    if ((b & 0xffff) == 0)
        return 0;
    cpuid(0xb, level, &a, &b, &c, &d);
    out->shift = a & 0x1f;
    out->count = b & 0xffff;
    out->type = (c >> 8) & 0xff;
    out->x2apic_id = d;
    return 1;
}

int smp_expected_cpus(const char *who, const char **source)
{
    u64 n;
    size_t len;
    if (cmdline_get("cpus", &len)) {
        *source = "cpus=";
        if (!cmdline_get_u64("cpus", &n) || n < 1 || n > SMP_MAX_CPUS) {
            gprintf("FAIL: %s: bad cpus= value (1..%d)\n", who, SMP_MAX_CPUS);
            return 0;
        }
        return (int)n;
    }
    struct cpu_topo_level t;
    if (cpuid_topo(1, &t) && t.type == 2 && t.count >= 1 && t.count <= SMP_MAX_CPUS) {
        *source = "cpuid 0xb";
        return (int)t.count;
    }
    u32 a, b, c, d;
    cpuid(1, 0, &a, &b, &c, &d);
    if ((d & (1u << 28)) && ((b >> 16) & 0xff) >= 1 && ((b >> 16) & 0xff) <= SMP_MAX_CPUS) {
        *source = "cpuid 1";
        return (int)((b >> 16) & 0xff);
    }
    *source = "default";
    return 1;
}

/* ------------------------------------------------------------------ */
/* AP start-up                                                         */
/* ------------------------------------------------------------------ */
static volatile u8 *tramp_params(void) { return (volatile u8 *)(AP_TRAMP_BASE + AP_TRAMP_PARAMS); }
#define PARAM32(off) (*(volatile u32 *)(tramp_params() + (off)))
#define PARAM16(off) (*(volatile u16 *)(tramp_params() + (off)))
#define PARAM64(off) (*(volatile u64 *)(tramp_params() + (off)))

/* First C code of an AP (the trampoline far-returns here, RDI = index). */
void smp_ap_entry(u64 index) __attribute__((noreturn));
void smp_ap_entry(u64 index)
{
    /* Everything the AP needs from the parameter block is in registers by
     * now: the BSP may reuse the block once it sees stage 4. */
    if (index < SMP_MAX_CPUS)
        smp_ap_stage[index] = 4;
    PARAM32(APP_STAGE) = 4;
    idt_reload();
    if (g_ap_fn && index < SMP_MAX_CPUS)
        g_ap_fn((int)index);
    halt_forever();
}

static const char *stage_name(u32 stage)
{
    switch (stage) {
    case 0:
        return "never ran the trampoline (no real-mode instruction executed after INIT/SIPI)";
    case 1:
        return "stuck in real mode (before protected mode)";
    case 2:
        return "stuck in protected mode (before long mode)";
    case 3:
        return "stuck in long mode before the C entry";
    default:
        return "reached C";
    }
}

static int ranges_overlap(u64 a, u64 alen, u64 b, u64 blen) { return a < b + blen && b < a + alen; }

void smp_ap_done(int index)
{
    if (index > 0 && index < SMP_MAX_CPUS)
        smp_ap_stage[index] = 5;
}

int smp_start_aps(int n, ap_fn_t fn, const char *who, int wait_done)
{
    if (n <= 1)
        return 1;
    if (n > SMP_MAX_CPUS) {
        gprintf("FAIL: %s: %d cpus requested, at most %d supported\n", who, n, SMP_MAX_CPUS);
        return 1;
    }
    if (lapic_enable(who) < 0)
        return 1;
    u32 bsp_id = lapic_id();
    if (bsp_id != 0) {
        gprintf("FAIL: %s: the BSP has APIC ID %u, expected 0 (cpu i = APIC ID i)\n", who, bsp_id);
        return 1;
    }
    u64 cr3 = read_cr3();
    if (cr3 >= FOUR_GIB) {
        gprintf("FAIL: %s: CR3=0x%lx above 4 GiB, the 32-bit trampoline cannot load it\n", who, cr3);
        return 1;
    }
    /* Do not overwrite boot information we may still read. */
    if ((g_boot.cmdline_addr && ranges_overlap(g_boot.cmdline_addr, strlen(g_boot.cmdline) + 1,
                                               AP_TRAMP_BASE, AP_TRAMP_SIZE)) ||
        ranges_overlap(g_boot.info_addr, 4096, AP_TRAMP_BASE, AP_TRAMP_SIZE)) {
        gprintf("FAIL: %s: boot information (cmdline 0x%lx, info 0x%lx) lies in the trampoline page 0x%x\n",
                who, g_boot.cmdline_addr, g_boot.info_addr, AP_TRAMP_BASE);
        return 1;
    }

    size_t code = (size_t)(ap_tramp_end - ap_tramp_start);
    if (code > AP_TRAMP_PARAMS) {
        gprintf("FAIL: %s: trampoline (%lu bytes) overlaps its parameter block\n", who, code);
        return 1;
    }
    memcpy((void *)(uintptr_t)AP_TRAMP_BASE, ap_tramp_start, code);
    memset((void *)(uintptr_t)(AP_TRAMP_BASE + AP_TRAMP_PARAMS), 0, APP_SIZE);

    struct desc_ptr gdtr;
    sgdt(&gdtr);
    g_ap_fn = fn;
    PARAM64(APP_CR0) = read_cr0();
    PARAM64(APP_CR3) = cr3;
    PARAM64(APP_CR4) = read_cr4();
    PARAM64(APP_EFER) = rdmsr(MSR_EFER) & ~EFER_LMA;
    PARAM16(APP_GDTR) = gdtr.limit;
    PARAM64(APP_GDTR + 2) = gdtr.base;
    PARAM16(APP_CS) = read_cs();
    PARAM16(APP_DS) = read_ds();
    PARAM64(APP_ENTRY) = (u64)(uintptr_t)smp_ap_entry;

    /* 5 s: in the nested tier 32 vCPUs share two emulated CPUs, and one AP
     * was seen to need more than a second of the BSP's time to report. */
    u64 timeout_ms = 5000;
    cmdline_get_u64("ap_timeout_ms", &timeout_ms);
    /* With an assumed TSC frequency a faster TSC would shorten the delays:
     * make them long enough for up to 4 GHz. */
    u64 scale = !strcmp(tsc_khz_source(), "assumed 2 GHz") ? 2 : 1;

    int running = 1;
    for (int i = 1; i < n; i++) {
        PARAM32(APP_STAGE) = 0;
        smp_ap_stage[i] = 0;
        PARAM64(APP_STACK) = (u64)(uintptr_t)&smp_ap_stacks[i][AP_STACK_SIZE];
        PARAM64(APP_INDEX) = (u64)i;
        __asm__ volatile("" ::: "memory"); /* x86 stores are ordered */

        lapic_write(LAPIC_ESR, 0);
        int bad = icr_send((u32)i, ICR_INIT | ICR_LEVEL_ASSERT);
        tsc_delay_us(10000 * scale);
        bad |= icr_send((u32)i, ICR_STARTUP | ICR_LEVEL_ASSERT | (AP_TRAMP_BASE >> 12));
        tsc_delay_us(200 * scale);
        bad |= icr_send((u32)i, ICR_STARTUP | ICR_LEVEL_ASSERT | (AP_TRAMP_BASE >> 12));
        tsc_delay_us(200 * scale);
        if (bad)
            gprintf("info: %s: cpu %d: ICR delivery status stayed pending\n", who, i);

        struct tclock c;
        tclock_start(&c, 100);
        while (PARAM32(APP_STAGE) < 4 && tclock_poll(&c) < ms_to_tsc(timeout_ms))
            cpu_pause();
        u32 stage = PARAM32(APP_STAGE);
        if (stage < 4) {
            lapic_write(LAPIC_ESR, 0);
            smp_printf("FAIL: %s: cpu %d (APIC ID %d) did not start within %lu ms: trampoline stage %u, %s "
                       "(ESR=0x%x); not starting further cpus\n",
                       who, i, i, timeout_ms, stage, stage_name(stage), lapic_read(LAPIC_ESR));
            break;
        }
        running++;
        if (wait_done) {
            while (smp_ap_stage[i] < 5 && tclock_poll(&c) < ms_to_tsc(timeout_ms))
                cpu_pause();
            if (smp_ap_stage[i] < 5) {
                smp_printf("FAIL: %s: cpu %d started but did not finish within %lu ms; "
                           "not starting further cpus\n",
                           who, i, timeout_ms);
                break;
            }
        }
    }
    return running;
}
