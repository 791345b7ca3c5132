/* Shared runtime of the test guests: see runtime.h. */
#include "runtime.h"

struct boot_info g_boot;

static int g_exit_via_mmio;
static int g_timer_via_mmio;

/* ------------------------------------------------------------------ */
/* libc-ish                                                            */
/* ------------------------------------------------------------------ */
void *memset(void *d, int c, size_t n)
{
    void *p = d;
    __asm__ volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(c) : "memory");
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    void *p = d;
    __asm__ volatile("rep movsb" : "+D"(p), "+S"(s), "+c"(n) : : "memory");
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    u8 *dp = d;
    const u8 *sp = s;
    if (dp == sp || n == 0)
        return d;
    if (dp < sp || dp >= sp + n)
        return memcpy(d, s, n);
    while (n--)
        dp[n] = sp[n];
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const u8 *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

size_t strnlen(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n])
        n++;
    return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i])
            return (u8)a[i] < (u8)b[i] ? -1 : 1;
        if (!a[i])
            return 0;
    }
    return 0;
}

int strcmp(const char *a, const char *b) { return strncmp(a, b, (size_t)-1); }

/* ------------------------------------------------------------------ */
/* serial                                                              */
/* ------------------------------------------------------------------ */
#define UART_RBR 0
#define UART_THR 0
#define UART_IER 1
#define UART_LCR 3
#define UART_LSR 5
#define LSR_DR 0x01
#define LSR_THRE 0x20

void serial_init(void)
{
    outb(0x00, COM1_PORT + UART_IER); /* no UART interrupts */
    outb(0x03, COM1_PORT + UART_LCR); /* 8N1, DLAB off */
}

void serial_putc(char c)
{
    /* Bounded wait so a missing/odd UART cannot hang the guest. */
    for (int i = 0; i < 1000; i++) {
        if (inb(COM1_PORT + UART_LSR) & LSR_THRE)
            break;
        cpu_pause();
    }
    outb((u8)c, COM1_PORT + UART_THR);
}

void serial_puts(const char *s)
{
    while (*s)
        serial_putc(*s++);
}

int serial_data_ready(void) { return inb(COM1_PORT + UART_LSR) & LSR_DR; }

int serial_getc(void)
{
    while (!serial_data_ready())
        cpu_pause();
    return inb(COM1_PORT + UART_RBR);
}

static void put_unsigned(u64 v, unsigned base, int upper, int width, char pad)
{
    char buf[24];
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    int n = 0;
    do {
        buf[n++] = digits[v % base];
        v /= base;
    } while (v);
    while (n < width && n < (int)sizeof(buf))
        buf[n++] = pad;
    while (n)
        serial_putc(buf[--n]);
}

void put_hex(u64 v)
{
    serial_puts("0x");
    put_unsigned(v, 16, 0, 0, '0');
}

void put_dec(u64 v) { put_unsigned(v, 10, 0, 0, '0'); }

void gvprintf(const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            serial_putc(*fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0, lng = 0;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l' || *fmt == 'z') {
            lng = 1;
            fmt++;
        }
        switch (*fmt) {
        case 'd':
        case 'i': {
            s64 v = lng ? va_arg(ap, long) : va_arg(ap, int);
            if (v < 0) {
                serial_putc('-');
                put_unsigned((u64)-v, 10, 0, width ? width - 1 : 0, pad);
            } else {
                put_unsigned((u64)v, 10, 0, width, pad);
            }
            break;
        }
        case 'u':
            put_unsigned(lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int), 10, 0, width, pad);
            break;
        case 'x':
        case 'X':
            put_unsigned(lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int), 16, *fmt == 'X',
                         width, pad);
            break;
        case 'p':
            put_hex((u64)va_arg(ap, void *));
            break;
        case 'c':
            serial_putc((char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            serial_puts(s ? s : "(null)");
            break;
        }
        case '%':
            serial_putc('%');
            break;
        case '\0':
            return;
        default:
            serial_putc('%');
            serial_putc(*fmt);
            break;
        }
    }
}

void gprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gvprintf(fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* VMM interface                                                       */
/* ------------------------------------------------------------------ */
void boot_timer_mark(void)
{
    if (g_timer_via_mmio)
        mmio_write8(MMIO_DEBUG_TIMER, 1);
    else
        outb(1, BOOT_TIMER_PORT);
}

void guest_exit(int status)
{
    u8 s = (u8)status;
    if (g_exit_via_mmio) {
        mmio_write8(MMIO_DEBUG_EXIT, s);
        outb(s, DEBUG_EXIT_PORT);
    } else {
        outb(s, DEBUG_EXIT_PORT);
        mmio_write8(MMIO_DEBUG_EXIT, s);
    }
    /* Neither exit device stopped us: nothing else we can do. */
    halt_forever();
}

/* ------------------------------------------------------------------ */
/* command line                                                        */
/* ------------------------------------------------------------------ */
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Iterate over whitespace-separated tokens of the cmdline. */
static const char *next_token(const char *p, size_t *len)
{
    while (*p && is_space(*p))
        p++;
    if (!*p)
        return NULL;
    size_t n = 0;
    while (p[n] && !is_space(p[n]))
        n++;
    *len = n;
    return p;
}

const char *cmdline_get(const char *key, size_t *len)
{
    const char *found = NULL;
    size_t klen = strlen(key), tlen;
    for (const char *t = g_boot.cmdline; (t = next_token(t, &tlen)); t += tlen) {
        if (tlen == klen && !memcmp(t, key, klen)) {
            found = t + tlen; /* bare "key" */
            *len = 0;
        } else if (tlen > klen && t[klen] == '=' && !memcmp(t, key, klen)) {
            found = t + klen + 1;
            *len = tlen - klen - 1;
        }
    }
    return found;
}

int cmdline_has_token(const char *token)
{
    size_t n = strlen(token), tlen;
    for (const char *t = g_boot.cmdline; (t = next_token(t, &tlen)); t += tlen)
        if (tlen == n && !memcmp(t, token, n))
            return 1;
    return 0;
}

int parse_u64(const char *s, size_t len, u64 *out)
{
    u64 v = 0;
    unsigned base = 10;
    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        len -= 2;
    }
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return 0;
        if (v > (~0UL - d) / base)
            return 0; /* overflow */
        v = v * base + d;
    }
    *out = v;
    return 1;
}

int cmdline_get_u64(const char *key, u64 *out)
{
    size_t len;
    const char *v = cmdline_get(key, &len);
    return v && parse_u64(v, len, out);
}

static int value_is(const char *key, const char *want)
{
    size_t len;
    const char *v = cmdline_get(key, &len);
    return v && len == strlen(want) && !memcmp(v, want, len);
}

/* ------------------------------------------------------------------ */
/* exceptions                                                          */
/* ------------------------------------------------------------------ */
struct idt_entry {
    u16 off_lo;
    u16 sel;
    u8 ist;
    u8 type_attr;
    u16 off_mid;
    u32 off_hi;
    u32 zero;
} __attribute__((packed));

static struct idt_entry g_idt[256] __attribute__((aligned(16)));
extern const u64 isr_stub_table[32];

void idt_set_gate(int vec, void (*handler)(void))
{
    u64 a = (u64)handler;
    struct idt_entry *e = &g_idt[vec & 0xff];
    e->off_lo = a & 0xffff;
    e->sel = read_cs();
    e->ist = 0;
    e->type_attr = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
    e->off_mid = (a >> 16) & 0xffff;
    e->off_hi = a >> 32;
    e->zero = 0;
}

void idt_reload(void)
{
    struct desc_ptr p = {.limit = sizeof(g_idt) - 1, .base = (u64)g_idt};
    lidt(&p);
}

static void idt_init(void)
{
    for (int i = 0; i < 32; i++)
        idt_set_gate(i, (void (*)(void))isr_stub_table[i]);
    idt_reload();
}

struct exc_frame {
    u64 vector, error, rip, cs, rflags, rsp, ss;
};

static const char *const exc_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
    "#NP", "#SS", "#GP", "#PF", "15",  "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

void exception_dispatch(struct exc_frame *f);
void exception_dispatch(struct exc_frame *f)
{
    static int nested;
    if (nested++)
        guest_exit(EXIT_EXCEPTION);
    const char *name = f->vector < 32 && exc_names[f->vector] ? exc_names[f->vector] : "?";
    gprintf("FAIL: unexpected exception %lu (%s) error=0x%lx rip=0x%lx cs=0x%lx rflags=0x%lx "
            "rsp=0x%lx cr2=0x%lx\n",
            f->vector, name, f->error, f->rip, f->cs, f->rflags, f->rsp, read_cr2());
    guest_exit(EXIT_EXCEPTION);
}

/* ------------------------------------------------------------------ */
/* page tables                                                         */
/* ------------------------------------------------------------------ */
#define PTE_P 0x1UL
#define PTE_PS 0x80UL
#define PTE_ADDR 0x000ffffffffff000UL

int pt_walk(u64 cr3, u64 va, u64 *pa, u64 *page_size)
{
    u64 table = cr3 & PTE_ADDR;
    static const int shifts[4] = {39, 30, 21, 12};
    for (int level = 0; level < 4; level++) {
        if (!phys_reachable(table, 4096))
            return -2;
        u64 e = ((volatile u64 *)table)[(va >> shifts[level]) & 0x1ff];
        if (!(e & PTE_P))
            return -1;
        u64 size = 1UL << shifts[level];
        if (level == 3 || (level > 0 && (e & PTE_PS))) {
            u64 base = e & PTE_ADDR & ~(size - 1);
            *pa = base | (va & (size - 1));
            *page_size = size;
            return 0;
        }
        table = e & PTE_ADDR;
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* boot information                                                    */
/* ------------------------------------------------------------------ */
static void set_cmdline(u64 addr)
{
    g_boot.cmdline = "";
    g_boot.cmdline_addr = addr;
    if (addr && phys_reachable(addr, 1))
        g_boot.cmdline = (const char *)addr;
}

static void add_mem(u64 addr, u64 size, u32 type)
{
    if (g_boot.nr_mem >= MAX_MEM_REGIONS) {
        g_boot.mem_truncated = 1;
        return;
    }
    struct mem_region *r = &g_boot.mem[g_boot.nr_mem++];
    r->addr = addr;
    r->size = size;
    r->type = type;
}

static void init_linux64(u64 bp)
{
    g_boot.proto_name = "linux64";
    if (!bp || !phys_reachable(bp, 4096))
        return;
    const u8 *p = (const u8 *)bp;
    g_boot.info_valid = *(const u16 *)(p + BP_BOOT_FLAG) == BOOT_FLAG_MAGIC &&
                        *(const u32 *)(p + BP_HEADER) == HDRS_MAGIC;
    set_cmdline(*(const u32 *)(p + BP_CMD_LINE_PTR) |
                ((u64) * (const u32 *)(p + BP_EXT_CMD_LINE_PTR) << 32));
    const struct boot_e820_entry *e = (const void *)(p + BP_E820_TABLE);
    int n = p[BP_E820_ENTRIES];
    if (n > BP_E820_MAX) {
        n = BP_E820_MAX;
        g_boot.mem_truncated = 1;
    }
    for (int i = 0; i < n; i++)
        add_mem(e[i].addr, e[i].size, e[i].type);
    g_boot.initrd_addr = *(const u32 *)(p + BP_RAMDISK_IMAGE) |
                         ((u64) * (const u32 *)(p + BP_EXT_RAMDISK_IMAGE) << 32);
    g_boot.initrd_size = *(const u32 *)(p + BP_RAMDISK_SIZE) |
                         ((u64) * (const u32 *)(p + BP_EXT_RAMDISK_SIZE) << 32);
}

static void init_pvh(u64 addr)
{
    g_boot.proto_name = "pvh";
    if (!addr || !phys_reachable(addr, sizeof(struct hvm_start_info)))
        return;
    const struct hvm_start_info *si = (const void *)addr;
    if (si->magic != XEN_HVM_START_MAGIC_VALUE)
        return;
    g_boot.info_valid = 1;
    set_cmdline(si->cmdline_paddr);
    if (si->version >= 1 && si->memmap_paddr &&
        phys_reachable(si->memmap_paddr, (u64)si->memmap_entries * sizeof(struct hvm_memmap_table_entry))) {
        const struct hvm_memmap_table_entry *m = (const void *)si->memmap_paddr;
        for (u32 i = 0; i < si->memmap_entries; i++)
            add_mem(m[i].addr, m[i].size, m[i].type);
    }
    if (si->nr_modules >= 1 && si->modlist_paddr &&
        phys_reachable(si->modlist_paddr, sizeof(struct hvm_modlist_entry))) {
        const struct hvm_modlist_entry *mod = (const void *)si->modlist_paddr;
        g_boot.initrd_addr = mod[0].paddr;
        g_boot.initrd_size = mod[0].size;
    }
}

void runtime_entry(u64 proto, u64 info) __attribute__((noreturn));
void runtime_entry(u64 proto, u64 info)
{
    idt_init();
    serial_init();

    g_boot.proto = (int)proto;
    g_boot.info_addr = info;
    g_boot.proto_name = "unknown";
    g_boot.cmdline = "";
    if (proto == BOOT_PROTO_LINUX64)
        init_linux64(info);
    else if (proto == BOOT_PROTO_PVH)
        init_pvh(info);

    g_exit_via_mmio = value_is("exit_via", "mmio");
    g_timer_via_mmio = value_is("timer_via", "mmio");

    guest_exit(guest_main(&g_boot));
}

int checks_failed, checks_passed;

void check(int cond, const char *fmt, ...)
{
    va_list ap;
    serial_puts(cond ? "ok: " : "FAIL: ");
    va_start(ap, fmt);
    gvprintf(fmt, ap);
    va_end(ap);
    serial_putc('\n');
    if (cond)
        checks_passed++;
    else
        checks_failed++;
}
