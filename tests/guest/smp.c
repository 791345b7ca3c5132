/*
 * smp: starts every CPU with INIT-SIPI-SIPI (lib/smp_boot.c, xAPIC, the
 * real-mode trampoline at AP_TRAMP_BASE = 0x10000) and checks what each one
 * reports about itself, then the MP table and the ACPI MADT the machine
 * describes its CPUs with.
 *
 * Per CPU (the BSP first, then each AP as it comes up): the xAPIC ID
 * register, CPUID.1:EBX[31:24] and CPUID leaf 0xB (x2APIC ID in EDX of
 * every subleaf; level 0 type SMT shift 0 count 1, level 1 type core shift
 * bits_for(N) count N, level 2 invalid) must all equal the cpu index, and
 * IA32_APIC_BASE.BSP must be set on cpu 0 only.  Then the CPU prints
 *   smp: cpu I apic_id A x2apic_id X online
 * and, on an AP, halts (or, with exit_from_last=1, the last CPU to come
 * online waits for the verdict and writes it to the exit port itself).
 *
 * Cmdline: cpus=N (CPUs to expect; default from CPUID), acpi=0 / mptable=0
 * (skip those checks), topology=0 (of leaf 0xB only check the subleaf 0
 * x2APIC ID, not the level types, shifts, counts and other subleaves),
 * mptable_ignore_count=1 (tolerate a wrong entry count in the MP table
 * header: QEMU microvm's qboot leaves it 0), exit_from_last=1,
 * ap_timeout_ms=N (5000), exit_wait_ms=N (2000: how long the BSP waits for
 * the VM to stop after the last CPU wrote the status), exit_via=mmio (as in
 * every guest), poweroff=acpi (after a PASS, power off the way Linux does
 * on a hardware-reduced ACPI machine instead of writing the exit port: the
 * VMM should then exit 0 by itself).
 * Output: the per-CPU lines, "smp: N cpus online", "smp: mptable ok (N
 * processors)", "smp: madt ok (N local apics)" (or "... skipped"), any
 * "FAIL: ..." lines, then "smp: PASS" (exit 0) or "smp: FAIL" (exit 1);
 * 2 for a bad cpus= value.
 */
#include "smp_boot.h"

struct cpu_report {
    volatile u32 online;
    int failures;
};

static struct cpu_report g_cpu[SMP_MAX_CPUS];
static int g_ncpus;
static volatile u32 g_online;
static int g_exit_from_last;
static int g_exit_via_mmio;
static int g_check_topology = 1;
static volatile u32 g_verdict_ready;
static int g_poweroff_acpi;
static u64 g_fadt; /* found by check_acpi */
static volatile u32 g_verdict;

/* ------------------------------------------------------------------ */
/* per-CPU identity                                                    */
/* ------------------------------------------------------------------ */
static const char *level_type_name(u32 t)
{
    static const char *const names[] = {"invalid", "smt", "core", "module", "tile", "die"};
    return t < ARRAY_SIZE(names) ? names[t] : "?";
}

/* Runs on cpu idx with the print lock held; returns the number of failures. */
static int report_cpu_locked(int idx)
{
    int f = 0;
    char who[24] = "smp: cpu ";
    size_t w = strlen(who);
    if (idx >= 10)
        who[w++] = (char)('0' + idx / 10);
    who[w++] = (char)('0' + idx % 10);
    who[w] = 0;

    if (lapic_enable(who) < 0)
        f++;
    u64 apic_base = rdmsr(MSR_APIC_BASE);
    u32 apic_id = lapic_id();
    u32 a, b, c, d;
    cpuid(1, 0, &a, &b, &c, &d);
    u32 initial_id = b >> 24;

    if (apic_id != (u32)idx) {
        gprintf("FAIL: %s: LAPIC ID register says %u, expected %d\n", who, apic_id, idx);
        f++;
    }
    if (initial_id != (u32)idx) {
        gprintf("FAIL: %s: CPUID.1:EBX[31:24] (initial APIC ID) is %u, expected %d\n", who, initial_id, idx);
        f++;
    }
    int bsp_flag = !!(apic_base & APIC_BASE_BSP);
    if (bsp_flag != (idx == 0)) {
        gprintf("FAIL: %s: IA32_APIC_BASE=0x%lx: BSP flag %d, expected %d\n", who, apic_base, bsp_flag, idx == 0);
        f++;
    }

    struct cpu_topo_level lv[3];
    int have_b = cpuid_topo(0, &lv[0]);
    u32 x2apic_id = 0;
    if (!have_b) {
        gprintf("FAIL: %s: CPUID leaf 0xB (x2APIC topology) not available\n", who);
        f++;
    } else {
        cpuid_topo(1, &lv[1]);
        cpuid_topo(2, &lv[2]);
        x2apic_id = lv[0].x2apic_id;
        gprintf("smp: cpu %d leaf 0xb: level 0 type %u (%s) shift %u count %u, level 1 type %u (%s) shift %u "
                "count %u, level 2 type %u (%s)\n",
                idx, lv[0].type, level_type_name(lv[0].type), lv[0].shift, lv[0].count, lv[1].type,
                level_type_name(lv[1].type), lv[1].shift, lv[1].count, lv[2].type, level_type_name(lv[2].type));
        for (int l = 0; l < (g_check_topology ? 3 : 1); l++) {
            if (lv[l].x2apic_id != (u32)idx) {
                gprintf("FAIL: %s: CPUID.0xB.%d:EDX (x2APIC ID) is %u, expected %d\n", who, l,
                        lv[l].x2apic_id, idx);
                f++;
            }
        }
        if (!g_check_topology) {
            /* topology=0: only the x2APIC ID of subleaf 0 is checked */
        } else if (lv[0].type != 1 || lv[0].shift != 0 || lv[0].count != 1) {
            gprintf("FAIL: %s: leaf 0xB level 0 should be SMT with shift 0 and 1 thread (one thread per core)\n",
                    who);
            f++;
        }
        u32 want_shift = bits_for_count((u32)g_ncpus);
        if (g_check_topology && (lv[1].type != 2 || lv[1].shift != want_shift || lv[1].count != (u32)g_ncpus)) {
            gprintf("FAIL: %s: leaf 0xB level 1 should be core with shift %u and %d logical processors "
                    "(all cores in one package)\n",
                    who, want_shift, g_ncpus);
            f++;
        }
        if (g_check_topology && lv[2].type != 0) {
            gprintf("FAIL: %s: leaf 0xB level 2 should be invalid (type 0), is type %u\n", who, lv[2].type);
            f++;
        }
    }

    if (have_b)
        gprintf("smp: cpu %d apic_id %u x2apic_id %u online\n", idx, apic_id, x2apic_id);
    else
        gprintf("smp: cpu %d apic_id %u x2apic_id none online\n", idx, apic_id);
    return f;
}

/* Reports cpu idx and marks it online; returns the online count after it. */
static u32 cpu_come_online(int idx)
{
    smp_print_lock();
    g_cpu[idx].failures = report_cpu_locked(idx);
    g_cpu[idx].online = 1;
    u32 n = atomic_inc_return(&g_online);
    smp_print_unlock();
    return n;
}

static void write_exit_status(u8 status)
{
    if (g_exit_via_mmio)
        mmio_write8(MMIO_DEBUG_EXIT, status);
    else
        outb(status, DEBUG_EXIT_PORT);
}

static void ap_main(int idx)
{
    u32 n = cpu_come_online(idx);
    smp_ap_done(idx);
    if (g_exit_from_last && n == (u32)g_ncpus) {
        while (!g_verdict_ready)
            cpu_pause();
        u8 status = (u8)g_verdict;
        smp_printf("smp: cpu %d (last online) writes exit status %u to %s\n", idx, status,
                   g_exit_via_mmio ? "MMIO 0xc0000004" : "port 0xf4");
        write_exit_status(status);
    }
    /* return: halt forever (lib) */
}

/* ------------------------------------------------------------------ */
/* table helpers                                                       */
/* ------------------------------------------------------------------ */
static int g_failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    smp_print_lock();
    serial_puts("FAIL: ");
    va_start(ap, fmt);
    gvprintf(fmt, ap);
    va_end(ap);
    serial_putc('\n');
    smp_print_unlock();
    g_failures++;
}

static u8 sum8(u64 addr, u64 len)
{
    u8 s = 0;
    const volatile u8 *p = (const volatile u8 *)addr;
    for (u64 i = 0; i < len; i++)
        s += p[i];
    return s;
}

static u8 rd8(u64 a) { return *(const volatile u8 *)a; }
static u16 rd16(u64 a) { return *(const volatile u16 *)a; }
static u32 rd32(u64 a) { return *(const volatile u32 *)a; }
static u64 rd64(u64 a) { return *(const volatile u64 *)a; }
static int sig_is(u64 a, const char *sig, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rd8(a + i) != (u8)sig[i])
            return 0;
    return 1;
}

/* EBDA segment from the BIOS data area (0x40e), 0 if implausible. */
static u64 ebda_base(void)
{
    u64 bda_ebda = 0x40e;
    __asm__("" : "+r"(bda_ebda)); /* a real address, not a null-ish pointer */
    u64 seg = rd16(bda_ebda);
    u64 base = seg << 4;
    if (base < 0x80000 || base >= 0xa0000)
        return 0;
    return base;
}

/* Scans [start, end) in 16-byte steps for sig; returns the first address
 * whose `csum_len` bytes sum to 0, else 0 (with *bad set if one matched the
 * signature but not the checksum). */
static u64 scan16(u64 start, u64 end, const char *sig, size_t siglen, u64 csum_len, u64 *bad)
{
    for (u64 a = start; a + csum_len <= end; a += 16) {
        if (!sig_is(a, sig, siglen))
            continue;
        if (sum8(a, csum_len) == 0)
            return a;
        if (!*bad)
            *bad = a;
    }
    return 0;
}

/* Checks the list of APIC IDs a table gave for enabled CPUs: each of 0..N-1
 * exactly once. */
static int check_id_set(const char *what, const u32 *ids, int n)
{
    int ok = 1;
    u8 seen[SMP_MAX_CPUS] = {0};
    for (int i = 0; i < n; i++) {
        if (ids[i] >= (u32)g_ncpus) {
            fail("%s: enabled processor with APIC ID %u, expected IDs 0..%d", what, ids[i], g_ncpus - 1);
            ok = 0;
        } else if (seen[ids[i]]++) {
            fail("%s: APIC ID %u listed twice", what, ids[i]);
            ok = 0;
        }
    }
    for (int i = 0; i < g_ncpus; i++) {
        if (!seen[i]) {
            fail("%s: no enabled processor entry for APIC ID %d (cpu %d)", what, i, i);
            ok = 0;
        }
    }
    if (n != g_ncpus) {
        fail("%s: %d enabled processor entries, expected %d (cpus=%d)", what, n, g_ncpus, g_ncpus);
        ok = 0;
    }
    return ok;
}

/* ------------------------------------------------------------------ */
/* MP table (MultiProcessor Specification 1.4, chapter 4)              */
/* ------------------------------------------------------------------ */
#define MPC_HEADER_LEN 44

static void check_mptable(void)
{
    u64 bad = 0, fp = 0, ebda = ebda_base();
    const char *where = "";
    if (ebda && (fp = scan16(ebda, ebda + 1024, "_MP_", 4, 16, &bad)))
        where = "EBDA";
    else if ((fp = scan16(0x9fc00, 0xa0000, "_MP_", 4, 16, &bad)))
        where = "last KiB of base memory";
    else if ((fp = scan16(0xf0000, 0x100000, "_MP_", 4, 16, &bad)))
        where = "0xf0000..0xfffff";
    if (!fp) {
        if (bad)
            fail("mptable: \"_MP_\" at 0x%lx has a bad checksum, no valid MP floating pointer (mptable=0 skips "
                 "this check)",
                 bad);
        else
            fail("mptable: no MP floating pointer (\"_MP_\") in the EBDA, 0x9fc00..0x9ffff or 0xf0000..0xfffff "
                 "(mptable=0 skips this check)");
        return;
    }
    int before = g_failures;
    u32 cfg = rd32(fp + 4);
    u8 len = rd8(fp + 8), rev = rd8(fp + 9), feature1 = rd8(fp + 11);
    smp_printf("smp: mptable: floating pointer at 0x%lx (%s), rev %u, config table at 0x%x, feature1 0x%x\n", fp,
               where, rev, cfg, feature1);
    if (len != 1)
        fail("mptable: floating pointer length %u paragraphs, expected 1", len);
    if (rev != 1 && rev != 4)
        fail("mptable: floating pointer spec revision %u, expected 1 or 4", rev);
    if (feature1 != 0) {
        fail("mptable: feature byte 1 = %u (a default configuration), expected 0 (configuration table present)",
             feature1);
        return;
    }
    if (cfg == 0 || !phys_reachable(cfg, MPC_HEADER_LEN)) {
        fail("mptable: configuration table pointer 0x%x invalid", cfg);
        return;
    }
    if (!sig_is(cfg, "PCMP", 4)) {
        fail("mptable: no \"PCMP\" signature at 0x%x", cfg);
        return;
    }
    u16 base_len = rd16(cfg + 4), count = rd16(cfg + 0x22), ext_len = rd16(cfg + 0x28);
    u8 ext_sum = rd8(cfg + 0x2a);
    u32 lapic = rd32(cfg + 0x24);
    if (base_len < MPC_HEADER_LEN || !phys_reachable(cfg, (u64)base_len + ext_len)) {
        fail("mptable: base table length %u invalid", base_len);
        return;
    }
    smp_printf("smp: mptable: \"PCMP\" rev %u, base length %u, %u entries, extended length %u, local APIC 0x%x\n",
               rd8(cfg + 6), base_len, count, ext_len, lapic);
    if (sum8(cfg, base_len) != 0)
        fail("mptable: base configuration table checksum wrong (sum 0x%x)", sum8(cfg, base_len));
    if (rd8(cfg + 6) != 1 && rd8(cfg + 6) != 4)
        fail("mptable: configuration table spec revision %u, expected 1 or 4", rd8(cfg + 6));
    if (lapic != LAPIC_DEFAULT_BASE)
        fail("mptable: local APIC address 0x%x, expected 0x%lx", lapic, LAPIC_DEFAULT_BASE);
    if (ext_len && (u8)(sum8(cfg + base_len, ext_len) + ext_sum) != 0)
        fail("mptable: extended table checksum wrong");

    u32 ids[SMP_MAX_CPUS + 1];
    int nproc = 0, nioapic = 0, nbsp = 0, bsp_id = -1;
    /* Walked by the base table length (as operating systems do); the entry
     * count field must agree. */
    u64 p = cfg + MPC_HEADER_LEN, end = cfg + base_len;
    u32 nent = 0;
    while (p < end) {
        u8 type = rd8(p);
        u64 elen = type == 0 ? 20 : 8;
        if (type > 4) {
            fail("mptable: entry %u (offset %lu) has unknown type %u", nent, p - cfg, type);
            break;
        }
        if (p + elen > end) {
            fail("mptable: entry %u (type %u) runs past the base table (length %u)", nent, type, base_len);
            break;
        }
        if (type == 0) {
            u8 id = rd8(p + 1), flags = rd8(p + 3);
            if (flags & 1) {
                if (nproc <= SMP_MAX_CPUS)
                    ids[nproc] = id;
                nproc++;
            }
            if (flags & 2) {
                nbsp++;
                bsp_id = id;
                if (!(flags & 1))
                    fail("mptable: the BSP entry (APIC ID %u) is not enabled", id);
            }
        } else if (type == 2) {
            u8 flags = rd8(p + 3);
            u32 addr = rd32(p + 4);
            if ((flags & 1) && addr) {
                if (!nioapic)
                    smp_printf("smp: mptable: I/O APIC id %u version 0x%x at 0x%x\n", rd8(p + 1),
                               rd8(p + 2), addr);
                nioapic++;
            }
        }
        p += elen;
        nent++;
    }
    if (nent != count) {
        if (cmdline_has_token("mptable_ignore_count=1"))
            smp_printf("smp: mptable: info: header entry count is %u, the base table holds %u entries "
                       "(ignored: mptable_ignore_count=1)\n",
                       count, nent);
        else
            fail("mptable: header entry count is %u, the base table holds %u entries", count, nent);
    }
    if (nproc > SMP_MAX_CPUS + 1)
        fail("mptable: %d enabled processor entries, more than the %d this guest handles", nproc, SMP_MAX_CPUS);
    else
        check_id_set("mptable", ids, nproc);
    if (nbsp != 1)
        fail("mptable: %d processor entries with the BSP flag, expected 1", nbsp);
    else if (bsp_id != 0)
        fail("mptable: the BSP flag is on APIC ID %d, but the BSP has APIC ID 0", bsp_id);
    if (!nioapic)
        fail("mptable: no enabled I/O APIC entry");
    if (g_failures == before)
        smp_printf("smp: mptable ok (%d processors)\n", nproc);
}

/* ------------------------------------------------------------------ */
/* ACPI (6.x: 5.2.5 RSDP, 5.2.8 XSDT, 5.2.12 MADT)                     */
/* ------------------------------------------------------------------ */
#define ACPI_HDR_LEN 36

/* Validates an ACPI table header at a: reachable, length, checksum. */
static int acpi_table_ok(u64 a, const char *name)
{
    if (!a || !phys_reachable(a, ACPI_HDR_LEN)) {
        fail("acpi: %s at 0x%lx not reachable", name, a);
        return 0;
    }
    u32 len = rd32(a + 4);
    if (len < ACPI_HDR_LEN || len > (1u << 20) || !phys_reachable(a, len)) {
        fail("acpi: %s at 0x%lx has a bad length %u", name, a, len);
        return 0;
    }
    if (sum8(a, len) != 0) {
        fail("acpi: %s at 0x%lx checksum wrong (sum 0x%x)", name, a, sum8(a, len));
        return 0;
    }
    return 1;
}

static void check_madt_table(u64 madt)
{
    int before = g_failures;
    u32 len = rd32(madt + 4);
    if (len < ACPI_HDR_LEN + 8) {
        fail("madt: length %u too short", len);
        return;
    }
    u32 lapic = rd32(madt + 36), flags = rd32(madt + 40);
    smp_printf("smp: madt at 0x%lx, length %u, local APIC address 0x%x, flags 0x%x\n", madt, len, lapic, flags);
    if (lapic != LAPIC_DEFAULT_BASE)
        fail("madt: local interrupt controller address 0x%x, expected 0x%lx", lapic, LAPIC_DEFAULT_BASE);

    u32 ids[SMP_MAX_CPUS + 1];
    int nlapic = 0, nioapic = 0;
    u64 p = madt + ACPI_HDR_LEN + 8, end = madt + len;
    while (p < end) {
        if (p + 2 > end) {
            fail("madt: truncated entry at offset %lu", p - madt);
            break;
        }
        u8 type = rd8(p), elen = rd8(p + 1);
        if (elen < 2 || p + elen > end) {
            fail("madt: entry type %u at offset %lu has a bad length %u", type, p - madt, elen);
            break;
        }
        if (type == 0 || type == 9) {
            u64 need = type == 0 ? 8 : 16;
            if (elen < need) {
                fail("madt: %s entry with length %u, expected %lu", type == 0 ? "local APIC" : "local x2APIC",
                     elen, need);
            } else {
                u32 id = type == 0 ? rd8(p + 3) : rd32(p + 4);
                u32 fl = type == 0 ? rd32(p + 4) : rd32(p + 8);
                if (fl & 1) {
                    if (nlapic <= SMP_MAX_CPUS)
                        ids[nlapic] = id;
                    nlapic++;
                }
            }
        } else if (type == 1) {
            if (elen < 12) {
                fail("madt: I/O APIC entry with length %u, expected 12", elen);
            } else {
                u32 addr = rd32(p + 4);
                if (!nioapic)
                    smp_printf("smp: madt: I/O APIC id %u at 0x%x, GSI base %u\n", rd8(p + 2), addr, rd32(p + 8));
                if (addr)
                    nioapic++;
                else
                    fail("madt: I/O APIC entry with address 0");
            }
        }
        p += elen;
    }
    if (nlapic > SMP_MAX_CPUS + 1)
        fail("madt: %d enabled local APIC entries, more than the %d this guest handles", nlapic, SMP_MAX_CPUS);
    else
        check_id_set("madt", ids, nlapic);
    if (!nioapic)
        fail("madt: no I/O APIC entry");
    if (g_failures == before)
        smp_printf("smp: madt ok (%d local apics)\n", nlapic);
}

static void check_acpi(const struct boot_info *bi)
{
    u64 bad = 0, rsdp = 0, ebda = ebda_base();
    if (ebda)
        rsdp = scan16(ebda, ebda + 1024, "RSD PTR ", 8, 20, &bad);
    if (!rsdp)
        rsdp = scan16(0xe0000, 0x100000, "RSD PTR ", 8, 20, &bad);
    if (bi->proto == BOOT_PROTO_PVH && bi->info_valid) {
        u64 given = ((const struct hvm_start_info *)bi->info_addr)->rsdp_paddr;
        if (given && given != rsdp)
            smp_printf("smp: info: PVH start_info rsdp_paddr 0x%lx, scan found 0x%lx\n", given, rsdp);
    }
    if (!rsdp) {
        if (bad)
            fail("acpi: \"RSD PTR \" at 0x%lx has a bad checksum, no valid RSDP (acpi=0 skips this check)", bad);
        else
            fail("acpi: no RSDP (\"RSD PTR \") in the EBDA or 0xe0000..0xfffff (acpi=0 skips this check)");
        return;
    }
    u8 rev = rd8(rsdp + 15);
    u32 rsdt = rd32(rsdp + 16), len = rd32(rsdp + 20);
    u64 xsdt = rd64(rsdp + 24);
    smp_printf("smp: acpi: RSDP at 0x%lx, revision %u, RSDT 0x%x, XSDT 0x%lx\n", rsdp, rev, rsdt, xsdt);
    if (rev < 2) {
        fail("acpi: RSDP revision %u: no XSDT (revision 2 expected)", rev);
        return;
    }
    if (len < 36 || len > 4096 || sum8(rsdp, len) != 0) {
        fail("acpi: RSDP length %u or extended checksum wrong", len);
        return;
    }
    if (!acpi_table_ok(xsdt, "XSDT"))
        return;
    if (!sig_is(xsdt, "XSDT", 4)) {
        fail("acpi: table at the XSDT address 0x%lx is not an XSDT", xsdt);
        return;
    }
    u32 xlen = rd32(xsdt + 4);
    u32 n = (xlen - ACPI_HDR_LEN) / 8;
    u64 madt = 0, fadt = 0;
    char names[64];
    size_t nl = 0;
    for (u32 i = 0; i < n; i++) {
        u64 t = rd64(xsdt + ACPI_HDR_LEN + 8 * i);
        if (!acpi_table_ok(t, "XSDT entry"))
            continue;
        if (nl + 5 < sizeof(names)) {
            for (int k = 0; k < 4; k++)
                names[nl++] = (char)rd8(t + k);
            names[nl++] = ' ';
        }
        if (sig_is(t, "APIC", 4) && !madt)
            madt = t;
        if (sig_is(t, "FACP", 4) && !fadt)
            fadt = t;
    }
    if (nl)
        nl--;
    names[nl] = 0;
    smp_printf("smp: acpi: XSDT lists %u tables: %s\n", n, names);
    if (!fadt)
        fail("acpi: XSDT has no FADT (\"FACP\")");
    g_fadt = fadt;
    if (!madt) {
        fail("madt: XSDT has no MADT (\"APIC\")");
        return;
    }
    check_madt_table(madt);
}

/* ------------------------------------------------------------------ */
/* poweroff=acpi: Linux's acpi_power_off on a hardware-reduced machine */
/* (ACPICA acpi_hw_extended_sleep): SLP_TYPa from the DSDT's \_S5_,   */
/* WAK_STS (0x80) to SLEEP_STATUS_REG, then SLP_TYP << 2 | SLP_EN      */
/* (0x20) to SLEEP_CONTROL_REG.                                        */
/* ------------------------------------------------------------------ */
#define FADT_SLEEP_CONTROL_REG 244
#define FADT_SLEEP_STATUS_REG 256

/* The port of the 8-bit system-I/O register the FADT's GAS at off names, or 0. */
static u16 fadt_sleep_port(u64 fadt, u32 off, const char *name)
{
    u32 len = rd32(fadt + 4);
    if (len < off + 12) {
        fail("poweroff: the FADT (%u bytes) has no %s", len, name);
        return 0;
    }
    u8 space = rd8(fadt + off), width = rd8(fadt + off + 1), shift = rd8(fadt + off + 2);
    u64 addr = rd64(fadt + off + 4);
    if (space != 1 || width != 8 || shift != 0 || !addr || addr > 0xffff) {
        fail("poweroff: %s is not an 8-bit I/O port (space %u, width %u, offset %u, address 0x%lx)", name, space,
             width, shift, addr);
        return 0;
    }
    return (u16)addr;
}

/* SLP_TYPa: the low byte of the first integer of Name (\_S5_, Package () {...}), or -1. */
static int dsdt_s5_type(u64 dsdt)
{
    u64 end = dsdt + rd32(dsdt + 4);
    for (u64 p = dsdt + ACPI_HDR_LEN; p + 12 <= end; p++) {
        u64 q = p + 1;
        if (rd8(p) != 0x08)
            continue;
        if (rd8(q) == '\\')
            q++;
        if (!sig_is(q, "_S5_", 4) || rd8(q + 4) != 0x12)
            continue;
        q += 5;
        q += 1 + (rd8(q) >> 6); /* PkgLength */
        if (rd8(q++) == 0)
            break; /* no elements */
        switch (rd8(q)) {
        case 0x00:
            return 0;
        case 0x01:
            return 1;
        case 0x0a:
        case 0x0b:
        case 0x0c:
        case 0x0e:
            return rd8(q + 1);
        }
        break;
    }
    fail("poweroff: the DSDT at 0x%lx has no \\_S5_ package with an integer", dsdt);
    return -1;
}

/* Returns only if the VM is still running wait_ms after the write. */
static void power_off_acpi(u64 wait_ms)
{
    if (!g_fadt) {
        fail("poweroff: no FADT (poweroff=acpi needs the ACPI checks, without acpi=0)");
        return;
    }
    u16 control = fadt_sleep_port(g_fadt, FADT_SLEEP_CONTROL_REG, "SLEEP_CONTROL_REG");
    u16 status = fadt_sleep_port(g_fadt, FADT_SLEEP_STATUS_REG, "SLEEP_STATUS_REG");
    u64 dsdt = rd32(g_fadt + 4) >= 148 ? rd64(g_fadt + 140) : 0;
    if (!dsdt)
        dsdt = rd32(g_fadt + 40);
    if (!control || !status || !acpi_table_ok(dsdt, "DSDT"))
        return;
    int type = dsdt_s5_type(dsdt);
    if (type < 0)
        return;
    u8 value = (u8)(((type << 2) & 0x1c) | 0x20);
    smp_printf("smp: poweroff: \\_S5_ SLP_TYP %d, writing 0x%x to port 0x%x\n", type, value, control);
    outb(0x80, status);
    outb(value, control);
    struct tclock c;
    tclock_start(&c, 100);
    while (tclock_poll(&c) < ms_to_tsc(wait_ms))
        cpu_pause();
    fail("poweroff: the VM was still running %lu ms after the S5 write", wait_ms);
}

/* ------------------------------------------------------------------ */
int guest_main(const struct boot_info *bi)
{
    const char *src;
    g_ncpus = smp_expected_cpus("smp", &src);
    if (!g_ncpus)
        return EXIT_USAGE;
    int want_acpi = !cmdline_has_token("acpi=0");
    int want_mptable = !cmdline_has_token("mptable=0");
    g_check_topology = !cmdline_has_token("topology=0");
    u64 v = 0;
    g_exit_from_last = cmdline_get_u64("exit_from_last", &v) && v;
    size_t len;
    const char *ev = cmdline_get("exit_via", &len);
    g_exit_via_mmio = ev && len == 4 && !memcmp(ev, "mmio", 4);
    u64 exit_wait_ms = 2000;
    cmdline_get_u64("exit_wait_ms", &exit_wait_ms);
    const char *po = cmdline_get("poweroff", &len);
    g_poweroff_acpi = po && len == 4 && !memcmp(po, "acpi", 4);

    gprintf("smp: expecting %d cpus (%s), xAPIC, trampoline at 0x%x, tsc %lu kHz (%s)\n", g_ncpus, src,
            AP_TRAMP_BASE, tsc_khz(), tsc_khz_source());

    cpu_come_online(0);
    int running = smp_start_aps(g_ncpus, ap_main, "smp", 1);

    /* Every started AP reports and marks itself online. */
    struct tclock c;
    tclock_start(&c, 100);
    while (g_online < (u32)running && tclock_poll(&c) < ms_to_tsc(2000))
        cpu_pause();
    u32 online = g_online;
    smp_printf("smp: %u cpus online\n", online);
    for (int i = 0; i < g_ncpus; i++)
        g_failures += g_cpu[i].failures;
    if (online != (u32)g_ncpus)
        fail("smp: %u of %d cpus online", online, g_ncpus);

    if (want_mptable)
        check_mptable();
    else
        smp_printf("smp: mptable skipped (mptable=0)\n");
    if (want_acpi)
        check_acpi(bi);
    else
        smp_printf("smp: madt skipped (acpi=0)\n");

    int verdict = g_failures ? EXIT_FAIL : EXIT_PASS;
    smp_printf("smp: %s\n", verdict == EXIT_PASS ? "PASS" : "FAIL");

    if (g_poweroff_acpi && verdict == EXIT_PASS) {
        power_off_acpi(exit_wait_ms);
        return EXIT_FAIL;
    }

    if (g_exit_from_last) {
        if (g_ncpus == 1) {
            smp_printf("smp: cpu 0 (last online) writes exit status %d to %s\n", verdict,
                       g_exit_via_mmio ? "MMIO 0xc0000004" : "port 0xf4");
            write_exit_status((u8)verdict);
        } else if (online == (u32)g_ncpus) {
            g_verdict = (u32)verdict;
            __asm__ volatile("" ::: "memory");
            g_verdict_ready = 1;
        } else {
            smp_printf("smp: exit_from_last: not every cpu came online, cpu 0 exits\n");
            return verdict;
        }
        tclock_start(&c, 100);
        while (tclock_poll(&c) < ms_to_tsc(exit_wait_ms))
            cpu_pause();
        fail("smp: exit_from_last: the last cpu wrote exit status %d, but the VM was still running %lu ms later",
             verdict, exit_wait_ms);
        return EXIT_FAIL;
    }
    return verdict;
}
