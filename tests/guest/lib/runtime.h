/*
 * Tiny freestanding runtime for the x86_64 test guests.
 *
 * Everything here runs in 64-bit long mode, ring 0, interrupts off, on an
 * identity mapping (virtual == physical) of the first 4 GiB.  Both boot
 * paths (Linux 64-bit boot protocol and PVH) end up in runtime_entry(),
 * which installs exception handlers, parses the boot information into a
 * protocol-neutral struct boot_info and calls the guest's guest_main().
 * The value guest_main() returns becomes the VMM exit status.
 */
#ifndef TEST_GUEST_RUNTIME_H
#define TEST_GUEST_RUNTIME_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;
typedef signed long s64;
typedef unsigned long size_t;
typedef unsigned long uintptr_t;

#define NULL ((void *)0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

typedef __builtin_va_list va_list;
#define va_start(ap, last) __builtin_va_start(ap, last)
#define va_arg(ap, type) __builtin_va_arg(ap, type)
#define va_end(ap) __builtin_va_end(ap)

/* ---- exit statuses used by the guests (see README.md) ---- */
#define EXIT_PASS 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2     /* a required cmdline token is missing/invalid */
#define EXIT_EXCEPTION 3 /* an unexpected CPU exception was taken       */

/* ---- machine contract ---- */
#define COM1_PORT 0x3f8
#define DEBUG_EXIT_PORT 0xf4
#define BOOT_TIMER_PORT 0xf5
#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define MMIO_DEBUG_BASE 0xc0000000UL
#define MMIO_DEBUG_TIMER (MMIO_DEBUG_BASE + 0x0)
#define MMIO_DEBUG_EXIT (MMIO_DEBUG_BASE + 0x4)

#define GUEST_LOAD_ADDR 0x100000UL
#define FOUR_GIB 0x100000000UL

/* ---- boot protocols ---- */
enum boot_proto {
    BOOT_PROTO_UNKNOWN = 0,
    BOOT_PROTO_LINUX64 = 1, /* 64-bit entry, RSI = struct boot_params  */
    BOOT_PROTO_PVH = 2,     /* 32-bit PVH entry, EBX = hvm_start_info  */
};

/* Linux struct boot_params offsets (Documentation/x86/zero-page.rst). */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR 0x1f1
#define BP_SETUP_SECTS 0x1f1
#define BP_BOOT_FLAG 0x1fe
#define BP_HEADER 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_CMDLINE_SIZE 0x238
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define BOOT_FLAG_MAGIC 0xAA55
#define HDRS_MAGIC 0x53726448 /* "HdrS" */

struct boot_e820_entry {
    u64 addr;
    u64 size;
    u32 type;
} __attribute__((packed));

/* xen/include/public/arch-x86/hvm/start_info.h */
#define XEN_HVM_START_MAGIC_VALUE 0x336ec578
struct hvm_start_info {
    u32 magic;
    u32 version;
    u32 flags;
    u32 nr_modules;
    u64 modlist_paddr;
    u64 cmdline_paddr;
    u64 rsdp_paddr;
    u64 memmap_paddr;   /* version >= 1 */
    u32 memmap_entries; /* version >= 1 */
    u32 reserved;
};
struct hvm_modlist_entry {
    u64 paddr;
    u64 size;
    u64 cmdline_paddr;
    u64 reserved;
};
struct hvm_memmap_table_entry {
    u64 addr;
    u64 size;
    u32 type;
    u32 reserved;
};

#define E820_TYPE_RAM 1
#define MAX_MEM_REGIONS 128

struct mem_region {
    u64 addr;
    u64 size;
    u32 type;
};

/* Protocol-neutral view of what the VMM handed us, filled by the runtime. */
struct boot_info {
    int proto;              /* enum boot_proto */
    const char *proto_name; /* "linux64" / "pvh" / "unknown" */
    u64 info_addr;          /* RSI (boot_params) or EBX (start_info) */
    int info_valid;         /* pointer usable and magic correct */
    const char *cmdline;    /* never NULL; "" when none */
    u64 cmdline_addr;       /* physical address, 0 when none */
    int nr_mem;             /* entries in mem[] */
    int mem_truncated;      /* VMM gave more entries than MAX_MEM_REGIONS */
    struct mem_region mem[MAX_MEM_REGIONS];
    u64 initrd_addr; /* 0 when none */
    u64 initrd_size;
};

/* CPU state recorded by the entry stubs (lib/entry.S) before anything ran. */
extern u64 entry_rflags;
extern u64 entry_cr0;
extern u64 entry_cr4;
extern u16 entry_cs, entry_ds, entry_es, entry_ss;
extern u8 entry_gdtr[10]; /* PVH path only: GDTR at entry (limit, base) */

/* Linker-script symbols. */
extern char __image_start[], __image_end[];
extern char _start32[], _start64[];

/* Implemented by each guest. */
int guest_main(const struct boot_info *bi);

extern struct boot_info g_boot;

/* ---- port / MMIO / CPU helpers ---- */
static inline void outb(u8 v, u16 port) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port)
{
    u8 v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline void mmio_write8(u64 addr, u8 v) { *(volatile u8 *)addr = v; }
static inline void cpu_pause(void) { __asm__ volatile("pause"); }
/* TSC, ordered after earlier loads (lfence) so a measured interval
 * does not start early. */
static inline u64 rdtsc_ordered(void)
{
    u32 lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return ((u64)hi << 32) | lo;
}
static inline void cpu_cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void cpu_hlt(void) { __asm__ volatile("hlt" ::: "memory"); }

static inline void cpuid(u32 leaf, u32 subleaf, u32 *a, u32 *b, u32 *c, u32 *d)
{
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(subleaf));
}
static inline u64 rdmsr(u32 msr)
{
    u32 lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((u64)hi << 32) | lo;
}
static inline u64 read_cr0(void) { u64 v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline u64 read_cr2(void) { u64 v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline u64 read_cr3(void) { u64 v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline u64 read_cr4(void) { u64 v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline u64 read_rflags(void) { u64 v; __asm__ volatile("pushfq; popq %0" : "=r"(v)); return v; }
static inline u16 read_cs(void) { u16 v; __asm__ volatile("mov %%cs, %0" : "=r"(v)); return v; }
static inline u16 read_ds(void) { u16 v; __asm__ volatile("mov %%ds, %0" : "=r"(v)); return v; }
static inline u16 read_es(void) { u16 v; __asm__ volatile("mov %%es, %0" : "=r"(v)); return v; }
static inline u16 read_ss(void) { u16 v; __asm__ volatile("mov %%ss, %0" : "=r"(v)); return v; }

struct desc_ptr {
    u16 limit;
    u64 base;
} __attribute__((packed));
static inline void sgdt(struct desc_ptr *p) { __asm__ volatile("sgdt %0" : "=m"(*p)); }
static inline void lidt(const struct desc_ptr *p) { __asm__ volatile("lidt %0" : : "m"(*p)); }

#define MSR_EFER 0xc0000080
#define EFER_LME (1UL << 8)
#define EFER_LMA (1UL << 10)
#define CR0_PE (1UL << 0)
#define CR0_PG (1UL << 31)
#define CR4_PAE (1UL << 5)
#define RFLAGS_IF (1UL << 9)

/* ---- libc-ish ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* ---- serial console (COM1, polled) ---- */
void serial_init(void);
void serial_putc(char c);
void serial_puts(const char *s);
int serial_data_ready(void);
int serial_getc(void); /* blocks (polling LSR bit 0) */
void put_hex(u64 v);   /* "0x..." */
void put_dec(u64 v);
/* printf subset: %s %c %d %i %u %x %X %p %%, with l/ll/z and 0/width. */
void gprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gvprintf(const char *fmt, va_list ap);

/* One "ok: ..." or "FAIL: ..." line per check; the counts are for the summary. */
extern int checks_failed, checks_passed;
void check(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- VMM interface ---- */
void boot_timer_mark(void); /* port 0xf5, or MMIO if timer_via=mmio */
/* Exit via port 0xf4 (or MMIO 0xc0000004 if exit_via=mmio); never returns. */
void guest_exit(int status) __attribute__((noreturn));
void halt_forever(void) __attribute__((noreturn));

/* ---- command line ("key=value" tokens separated by spaces) ---- */
/* Value of the last "key=..." token (length in *len) or NULL; a bare "key"
 * token yields an empty value. */
const char *cmdline_get(const char *key, size_t *len);
int cmdline_has_token(const char *token); /* exact whole-token match */
int cmdline_get_u64(const char *key, u64 *out); /* decimal or 0x hex */
int parse_u64(const char *s, size_t len, u64 *out);

/* ---- interrupts / exceptions ---- */
/* Every vector 0..31 has a default handler that prints the fault and exits
 * with EXIT_EXCEPTION; guests may override single vectors. */
void idt_set_gate(int vec, void (*handler)(void));
void idt_reload(void);

/* ---- page tables ---- */
/* Walk the 4-level tables at cr3 for va. Returns 0 and fills *pa and
 * *page_size on success, -1 if not present, -2 if a table lies above 4 GiB
 * (not reachable through the identity map). */
int pt_walk(u64 cr3, u64 va, u64 *pa, u64 *page_size);

/* True if [addr, addr+len) lies below 4 GiB (reachable through the map). */
static inline int phys_reachable(u64 addr, u64 len)
{
    return addr + len >= addr && addr + len <= FOUR_GIB;
}

#endif
