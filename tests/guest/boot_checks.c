/*
 * boot_checks: verifies the machine state and boot information the VMM
 * hands to a guest.  One "ok: ..." / "FAIL: ..." line per check ("info:" and
 * "skip:" lines are not checks), then "boot_checks: PASS" (exit 0) or
 * "boot_checks: FAIL" (exit 1).
 *
 * Cmdline tokens: guest_test=boot_checks (required to be present),
 * expect_mem_mib=N, expect_initrd_size=N, expect_initrd_magic=XXXX.
 */
#include "runtime.h"


#define MIB (1024UL * 1024UL)
#define GIB (1024UL * MIB)

static int overlaps(u64 a, u64 alen, u64 b, u64 blen) { return a < b + blen && b < a + alen; }

/* Is [addr, addr+len) fully inside one type-1 region? */
static int in_ram(const struct boot_info *bi, u64 addr, u64 len)
{
    for (int i = 0; i < bi->nr_mem; i++) {
        const struct mem_region *r = &bi->mem[i];
        if (r->type == E820_TYPE_RAM && addr >= r->addr && addr + len <= r->addr + r->size)
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
static u64 gdt_desc(const u8 *gdtr, u16 sel, int *ok)
{
    u16 limit = *(const u16 *)gdtr;
    u64 base = *(const u64 *)(gdtr + 2);
    *ok = 0;
    if (!(sel & ~7) || (sel & 4) || (u64)(sel & ~7) + 7 > limit || !phys_reachable(base + (sel & ~7), 8))
        return 0;
    *ok = 1;
    return *(const u64 *)(base + (sel & ~7));
}

static u64 desc_base(u64 d) { return ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000); }
static u64 desc_limit(u64 d)
{
    u64 l = (d & 0xffff) | ((d >> 32) & 0xf0000);
    return (d & (1UL << 55)) ? (l << 12) | 0xfff : l;
}
#define DESC_P (1UL << 47)
#define DESC_S (1UL << 44)
#define DESC_CODE (1UL << 43)
#define DESC_RW (1UL << 41)
#define DESC_L (1UL << 53)
#define DESC_DB (1UL << 54)

static void check_cpu_state(const struct boot_info *bi)
{
    u64 efer = rdmsr(MSR_EFER), cr0 = read_cr0(), cr4 = read_cr4();
    check(efer & EFER_LMA, "long mode active (EFER=0x%lx, LMA)", efer);
    check((cr0 & CR0_PE) && (cr0 & CR0_PG), "CR0.PE and CR0.PG set (CR0=0x%lx)", cr0);
    check(cr4 & CR4_PAE, "CR4.PAE set (CR4=0x%lx)", cr4);
    check(!(entry_rflags & RFLAGS_IF), "interrupts disabled at entry (RFLAGS=0x%lx)", entry_rflags);

    if (bi->proto == BOOT_PROTO_LINUX64) {
        struct desc_ptr gdtr;
        int ok;
        check(entry_cs == 0x10, "linux64: CS selector 0x10 (CS=0x%x)", entry_cs);
        check(entry_ds == 0x18 && entry_es == 0x18 && entry_ss == 0x18,
              "linux64: DS/ES/SS selectors 0x18 (DS=0x%x ES=0x%x SS=0x%x)", entry_ds, entry_es, entry_ss);
        sgdt(&gdtr);
        u64 cs = gdt_desc((const u8 *)&gdtr, entry_cs, &ok);
        check(ok && (cs & DESC_P) && (cs & DESC_S) && (cs & DESC_CODE) && (cs & DESC_L) && !(cs & DESC_DB),
              "linux64: GDT descriptor for CS is present 64-bit code (desc=0x%lx, GDT base=0x%lx limit=0x%x)",
              cs, gdtr.base, gdtr.limit);
        u64 ds = gdt_desc((const u8 *)&gdtr, entry_ds, &ok);
        check(ok && (ds & DESC_P) && (ds & DESC_S) && !(ds & DESC_CODE) && (ds & DESC_RW),
              "linux64: GDT descriptor for DS is present writable data (desc=0x%lx)", ds);
    } else if (bi->proto == BOOT_PROTO_PVH) {
        int ok;
        check((entry_cr0 & CR0_PE) && !(entry_cr0 & CR0_PG),
              "pvh: entered in protected mode with paging off (entry CR0=0x%lx)", entry_cr0);
        gprintf("info: pvh: entry CR4=0x%lx CS=0x%x DS=0x%x ES=0x%x SS=0x%x\n", entry_cr4, entry_cs, entry_ds,
                entry_es, entry_ss);
        u64 cs = gdt_desc(entry_gdtr, entry_cs, &ok);
        check(ok && (cs & DESC_P) && (cs & DESC_CODE) && (cs & DESC_DB) && !(cs & DESC_L) && desc_base(cs) == 0 &&
                  desc_limit(cs) == 0xffffffff,
              "pvh: entry CS descriptor is flat 32-bit code (desc=0x%lx)", cs);
        u64 ds = gdt_desc(entry_gdtr, entry_ds, &ok);
        check(ok && (ds & DESC_P) && !(ds & DESC_CODE) && (ds & DESC_RW) && desc_base(ds) == 0 &&
                  desc_limit(ds) == 0xffffffff,
              "pvh: entry DS descriptor is flat writable data (desc=0x%lx)", ds);
    }
}

/* ------------------------------------------------------------------ */
static void check_cmdline(const struct boot_info *bi, u64 max_len)
{
    check(bi->cmdline_addr != 0 && phys_reachable(bi->cmdline_addr, 1), "cmdline pointer 0x%lx is set and below 4 GiB",
          bi->cmdline_addr);
    size_t len = strnlen(bi->cmdline, 65536);
    gprintf("info: cmdline (%lu bytes): \"%s\"\n", (u64)len, bi->cmdline);
    if (max_len)
        check(len <= max_len, "cmdline length %lu <= cmdline_size %lu", (u64)len, max_len);
    check(cmdline_has_token("guest_test=boot_checks"), "cmdline contains guest_test=boot_checks");
}

/* ------------------------------------------------------------------ */
static void check_memmap(const struct boot_info *bi, const char *what)
{
    int n = bi->nr_mem;
    u64 ram = 0, ram_above_4g = 0;
    int sorted = 1, disjoint = 1, sizes_ok = 1;

    for (int i = 0; i < n; i++) {
        const struct mem_region *r = &bi->mem[i];
        gprintf("info: %s[%d]: [0x%lx, 0x%lx) type %u\n", what, i, r->addr, r->addr + r->size, r->type);
        if (r->size == 0 || r->addr + r->size < r->addr)
            sizes_ok = 0;
        if (i > 0) {
            const struct mem_region *p = &bi->mem[i - 1];
            if (r->addr < p->addr)
                sorted = 0;
            if (overlaps(p->addr, p->size, r->addr, r->size))
                disjoint = 0;
        }
        if (r->type == E820_TYPE_RAM) {
            ram += r->size;
            if (r->addr + r->size > FOUR_GIB)
                ram_above_4g += r->addr + r->size - (r->addr > FOUR_GIB ? r->addr : FOUR_GIB);
        }
    }
    check(n > 0 && !bi->mem_truncated, "%s: %d entries (non-empty, not truncated)", what, n);
    check(sizes_ok, "%s: every entry has a non-zero, non-wrapping size", what);
    check(sorted, "%s: sorted by address", what);
    check(disjoint, "%s: entries do not overlap", what);

    u64 img = (u64)__image_start, img_len = (u64)__image_end - img;
    check(in_ram(bi, img, img_len), "%s: RAM covers the guest image [0x%lx, 0x%lx)", what, img, img + img_len);

    int hole_ok = 1;
    for (int i = 0; i < n; i++)
        if (bi->mem[i].type == E820_TYPE_RAM && overlaps(bi->mem[i].addr, bi->mem[i].size, 3 * GIB, GIB))
            hole_ok = 0;
    check(hole_ok, "%s: no usable RAM in the 32-bit MMIO hole [3 GiB, 4 GiB)", what);

    u64 want_mib;
    if (cmdline_get_u64("expect_mem_mib", &want_mib)) {
        u64 want = want_mib * MIB;
        u64 diff = ram > want ? ram - want : want - ram;
        check(diff <= MIB, "%s: usable RAM %lu KiB within 1 MiB of expect_mem_mib=%lu", what, ram / 1024, want_mib);
        if (want_mib > 3072) {
            u64 want_high = want - 3 * GIB;
            u64 d = ram_above_4g > want_high ? ram_above_4g - want_high : want_high - ram_above_4g;
            check(d <= MIB, "%s: RAM above 4 GiB is %lu KiB, expected %lu MiB (split at 3 GiB)", what,
                  ram_above_4g / 1024, want_high / MIB);
        }
    } else {
        gprintf("skip: expect_mem_mib not given (usable RAM %lu KiB)\n", ram / 1024);
    }
}

/* ------------------------------------------------------------------ */
/* Common initrd checks; addr/size come from boot_params or the modlist. */
static void check_initrd(const struct boot_info *bi, u64 addr, u64 size, u64 addr_max)
{
    u64 want;
    if (!cmdline_get_u64("expect_initrd_size", &want)) {
        gprintf("skip: expect_initrd_size not given (initrd addr=0x%lx size=%lu)\n", addr, size);
        return;
    }
    check(size == want, "initrd size %lu == expect_initrd_size=%lu", size, want);
    int reachable = addr != 0 && phys_reachable(addr, size);
    check(reachable, "initrd address 0x%lx is set and the initrd lies below 4 GiB", addr);
    check(in_ram(bi, addr, size), "initrd [0x%lx, 0x%lx) lies in usable RAM", addr, addr + size);
    u64 img = (u64)__image_start, img_len = (u64)__image_end - img;
    check(!overlaps(addr, size, img, img_len), "initrd does not overlap the guest image");
    if (addr_max)
        check(size == 0 || addr + size - 1 <= addr_max, "initrd end 0x%lx <= initrd_addr_max 0x%lx",
              addr + size - 1, addr_max);

    size_t mlen;
    const char *magic = cmdline_get("expect_initrd_magic", &mlen);
    if (!magic) {
        gprintf("skip: expect_initrd_magic not given\n");
        return;
    }
    int ok = reachable && mlen > 0 && mlen <= size && !memcmp((const void *)addr, magic, mlen);
    char got[17];
    size_t glen = reachable ? (size < 16 ? size : 16) : 0;
    glen = glen < mlen ? glen : mlen;
    for (size_t i = 0; i < glen; i++) {
        char c = ((const char *)addr)[i];
        got[i] = (c >= 0x20 && c < 0x7f) ? c : '.';
    }
    got[glen] = 0;
    check(ok, "initrd starts with expect_initrd_magic (got \"%s\")", got);
}

/* ------------------------------------------------------------------ */
static void check_linux64(const struct boot_info *bi)
{
    u64 bp = bi->info_addr;
    gprintf("info: boot_params at 0x%lx (RSI)\n", bp);
    u64 img = (u64)__image_start, img_len = (u64)__image_end - img;
    int usable = bp && !(bp & 0xf) && phys_reachable(bp, 4096) && !overlaps(bp, 4096, img, img_len);
    check(usable, "RSI=0x%lx points to boot_params (non-zero, aligned, below 4 GiB, outside the image)", bp);
    if (!usable)
        return;
    const u8 *p = (const u8 *)bp;
    u16 boot_flag = *(const u16 *)(p + BP_BOOT_FLAG);
    u32 header = *(const u32 *)(p + BP_HEADER);
    u16 version = *(const u16 *)(p + BP_VERSION);
    u8 loader = p[BP_TYPE_OF_LOADER];
    check(boot_flag == BOOT_FLAG_MAGIC, "boot_params.hdr.boot_flag == 0xAA55 (0x%x)", boot_flag);
    check(header == HDRS_MAGIC, "boot_params.hdr.header == \"HdrS\" (0x%x)", header);
    check(version >= 0x020c, "boot_params.hdr.version >= 0x020c (0x%x)", version);
    check(loader != 0, "boot_params.hdr.type_of_loader set (0x%x, expected 0xff)", loader);
    gprintf("info: hdr.setup_sects=%u loadflags=0x%x\n", p[BP_SETUP_SECTS], p[BP_LOADFLAGS]);

    check_cmdline(bi, *(const u32 *)(p + BP_CMDLINE_SIZE));
    check_memmap(bi, "e820");
    check_initrd(bi, bi->initrd_addr, bi->initrd_size, *(const u32 *)(p + BP_INITRD_ADDR_MAX));
}

static void check_pvh(const struct boot_info *bi)
{
    u64 a = bi->info_addr;
    gprintf("info: hvm_start_info at 0x%lx (EBX)\n", a);
    check(a && phys_reachable(a, sizeof(struct hvm_start_info)), "EBX=0x%lx points below 4 GiB", a);
    if (!a || !phys_reachable(a, sizeof(struct hvm_start_info)))
        return;
    const struct hvm_start_info *si = (const void *)a;
    check(si->magic == XEN_HVM_START_MAGIC_VALUE, "start_info.magic == 0x336ec578 (0x%x)", si->magic);
    if (si->magic != XEN_HVM_START_MAGIC_VALUE)
        return;
    check(si->version >= 1, "start_info.version >= 1 (%u)", si->version);
    gprintf("info: start_info flags=0x%x nr_modules=%u modlist=0x%lx rsdp=0x%lx memmap=0x%lx entries=%u\n",
            si->flags, si->nr_modules, si->modlist_paddr, si->rsdp_paddr, si->memmap_paddr, si->memmap_entries);

    check_cmdline(bi, 0);
    check(si->version >= 1 && si->memmap_paddr != 0 && si->memmap_entries > 0,
          "start_info provides a memmap (paddr=0x%lx, %u entries)", si->memmap_paddr, si->memmap_entries);
    check_memmap(bi, "memmap");

    u64 want;
    if (cmdline_get_u64("expect_initrd_size", &want)) {
        check(si->nr_modules == 1, "start_info.nr_modules == 1 (%u)", si->nr_modules);
        check(si->modlist_paddr != 0 && phys_reachable(si->modlist_paddr, sizeof(struct hvm_modlist_entry)),
              "start_info.modlist_paddr 0x%lx is set", si->modlist_paddr);
    }
    check_initrd(bi, bi->initrd_addr, bi->initrd_size, 0);
}

/* ------------------------------------------------------------------ */
static void check_cpuid(void)
{
    u32 a, b, c, d;
    cpuid(1, 0, &a, &b, &c, &d);
    check(c & (1U << 31), "CPUID.1:ECX.hypervisor set (ECX=0x%x)", c);
    cpuid(0x40000000, 0, &a, &b, &c, &d);
    char sig[13];
    memcpy(sig, &b, 4);
    memcpy(sig + 4, &c, 4);
    memcpy(sig + 8, &d, 4);
    sig[12] = 0;
    check(!memcmp(sig, "KVMKVMKVM\0\0\0", 12), "CPUID 0x40000000 signature \"KVMKVMKVM\" (got \"%s\", max leaf 0x%x)",
          sig, a);
}

static void check_paging(const struct boot_info *bi)
{
    u64 cr3 = read_cr3();
    int local;
    gprintf("info: CR3=0x%lx\n", cr3);
    struct {
        const char *what;
        u64 va;
    } probes[] = {
        {"guest code", (u64)&guest_main},
        {"64-bit entry", (u64)_start64},
        {"guest stack", (u64)&local},
        {"boot info", bi->info_addr},
        {"MMIO debug page", MMIO_DEBUG_BASE},
        {"address 0", 0},
        {"last page below 4 GiB", FOUR_GIB - 4096},
    };
    for (size_t i = 0; i < ARRAY_SIZE(probes); i++) {
        u64 pa = 0, ps = 0;
        int r = pt_walk(cr3, probes[i].va, &pa, &ps);
        check(r == 0 && pa == probes[i].va, "page tables map %s 0x%lx to itself (walk=%d pa=0x%lx page=0x%lx)",
              probes[i].what, probes[i].va, r, pa, ps);
    }
    /* Sample the rest of the first 4 GiB every 128 MiB. */
    int bad = 0;
    u64 first_bad = 0;
    for (u64 va = 0x1000; va < FOUR_GIB; va += 128 * MIB) {
        u64 pa = 0, ps = 0;
        if (pt_walk(cr3, va, &pa, &ps) != 0 || pa != va) {
            if (!bad++)
                first_bad = va;
        }
    }
    check(!bad, "identity map of the first 4 GiB (sampled every 128 MiB, %d bad, first 0x%lx)", bad, first_bad);
}

int guest_main(const struct boot_info *bi)
{
    gprintf("boot_checks: protocol %s\n", bi->proto_name);
    check_cpu_state(bi);
    if (bi->proto == BOOT_PROTO_LINUX64)
        check_linux64(bi);
    else if (bi->proto == BOOT_PROTO_PVH)
        check_pvh(bi);
    else
        check(0, "known boot protocol (%d)", bi->proto);
    check_cpuid();
    check_paging(bi);

    if (checks_failed) {
        gprintf("info: %d checks failed, %d passed\n", checks_failed, checks_passed);
        gprintf("boot_checks: FAIL\n");
        return EXIT_FAIL;
    }
    gprintf("info: all %d checks passed\n", checks_passed);
    gprintf("boot_checks: PASS\n");
    return EXIT_PASS;
}
