/*
 * Constants shared by lib/ap_trampoline.S and lib/smp_boot.c (plain #defines so
 * the assembler can include this file).
 *
 * The trampoline page: 0x10000 is RAM in every machine we run on and is not
 * used by our VMM (boot structures at 0x500..0xefff, cmdline at 0x20000,
 * EBDA from 0x9fc00, tables from 0xe0000) nor by QEMU's PVH boot (cmdline at
 * 0x20000).  STARTUP IPI vector = AP_TRAMP_BASE >> 12 = 0x10.
 */
#ifndef TEST_GUEST_SMP_LAYOUT_H
#define TEST_GUEST_SMP_LAYOUT_H

#define AP_TRAMP_BASE 0x10000
#define AP_TRAMP_SIZE 0x1000
#define AP_TRAMP_PARAMS 0x800 /* offset of the parameter block in the page */

/* struct ap_tramp_params field offsets */
#define APP_STAGE 0x00 /* u32, written by the AP: 1 real, 2 protected, 3 long, 4 C */
#define APP_CR0 0x08   /* u64 (low half used) */
#define APP_CR3 0x10   /* u64 (must be below 4 GiB) */
#define APP_CR4 0x18   /* u64 (low half used) */
#define APP_EFER 0x20  /* u64, EFER without LMA */
#define APP_GDTR 0x28  /* u16 limit + u64 base (10 bytes) */
#define APP_CS 0x38    /* u16, the BSP's 64-bit code selector */
#define APP_DS 0x3a    /* u16, the BSP's data selector */
#define APP_STACK 0x40 /* u64, initial RSP (16-byte aligned) */
#define APP_INDEX 0x48 /* u64, cpu index, passed in RDI */
#define APP_ENTRY 0x50 /* u64, C entry point */
#define APP_SIZE 0x58

#endif
