/*
 * Application processor start-up trampoline (see lib/smp_boot.h).
 *
 * The bytes between ap_tramp_start and ap_tramp_end are copied by the BSP to
 * AP_TRAMP_BASE (a page below 1 MiB); a STARTUP IPI with vector
 * AP_TRAMP_BASE >> 12 makes the AP begin at its first byte in real mode with
 * CS = AP_TRAMP_BASE >> 4, IP = 0.  The BSP fills a parameter block at
 * AP_TRAMP_BASE + AP_TRAMP_PARAMS (the APP_* offsets in smp_layout.h) before
 * each start.  The AP walks through
 *
 *   real mode       -> stage 1, load the trampoline's own GDT, CR0.PE
 *   protected mode  -> stage 2, CR4 (PAE), CR3, EFER (LME) and CR0 (PG)
 *                      taken from the BSP
 *   long mode       -> stage 3, the BSP's GDT, data selectors, its own
 *                      stack, far return into the BSP's 64-bit code
 *                      selector at the C entry point with RDI = cpu index.
 *
 * Every address the code uses is a linear address inside the copied page
 * (the code is not run where it was linked), so labels are only ever used
 * as offsets from ap_tramp_start.
 */
#include "smp_layout.h"

#define OFF(label) ((label) - ap_tramp_start)
#define LIN(label) (AP_TRAMP_BASE + OFF(label))
#define PARAM(field) (AP_TRAMP_PARAMS + (field))

#define T_CODE32 0x08
#define T_CODE64 0x10
#define T_DATA 0x18
#define MSR_EFER 0xc0000080

	.section .rodata.ap_trampoline, "a"
	.globl ap_tramp_start, ap_tramp_end
	.balign 16

	.code16
ap_tramp_start:
	cli
	cld
	movw	%cs, %ax
	movw	%ax, %ds
	movl	$1, PARAM(APP_STAGE)		/* ds-relative: the params page */
	lgdtl	OFF(tramp_gdt_desc)
	movl	%cr0, %eax
	orl	$1, %eax			/* PE */
	movl	%eax, %cr0
	ljmpl	$T_CODE32, $LIN(tramp_pm32)

	.code32
tramp_pm32:
	movl	$T_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movl	$(AP_TRAMP_BASE + AP_TRAMP_PARAMS), %ebx
	movl	$2, APP_STAGE(%ebx)
	movl	APP_CR4(%ebx), %eax
	movl	%eax, %cr4
	movl	APP_CR3(%ebx), %eax
	movl	%eax, %cr3
	movl	$MSR_EFER, %ecx
	movl	APP_EFER(%ebx), %eax
	movl	APP_EFER+4(%ebx), %edx
	wrmsr
	movl	APP_CR0(%ebx), %eax		/* PE | PG (+ the BSP's other bits) */
	movl	%eax, %cr0
	ljmpl	$T_CODE64, $LIN(tramp_lm64)

	.code64
tramp_lm64:
	movl	$(AP_TRAMP_BASE + AP_TRAMP_PARAMS), %ebx
	movl	$3, APP_STAGE(%rbx)
	lgdt	APP_GDTR(%rbx)			/* the BSP's GDT from here on */
	movzwl	APP_DS(%rbx), %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movq	APP_STACK(%rbx), %rsp
	movq	APP_INDEX(%rbx), %rdi
	movq	APP_ENTRY(%rbx), %rax
	movzwl	APP_CS(%rbx), %ecx
	pushq	$LIN(tramp_dead)		/* "return address" of the C entry */
	pushq	%rcx
	pushq	%rax
	lretq					/* CS = BSP's code selector, RIP = entry */

tramp_dead:
	cli
	hlt
	jmp	tramp_dead

	.balign 8
tramp_gdt:
	.quad	0				/* 0x00 null */
	.quad	0x00cf9a000000ffff		/* 0x08 32-bit flat code */
	.quad	0x00af9a000000ffff		/* 0x10 64-bit code */
	.quad	0x00cf92000000ffff		/* 0x18 flat data */
tramp_gdt_end:
tramp_gdt_desc:
	.word	tramp_gdt_end - tramp_gdt - 1
	.long	LIN(tramp_gdt)
ap_tramp_end:

	/* The parameter block follows at AP_TRAMP_PARAMS: smp_start_aps()
	 * checks that the code ends before it. */

	.section .note.GNU-stack, "", @progbits
