/*
 * Entry points of every test guest.  Layout of the image (linked at 1 MiB):
 *
 *   0x100000  _start32   PVH entry (32-bit protected mode, paging off,
 *                        EBX = struct hvm_start_info).  Referenced by the
 *                        XEN_ELFNOTE_PHYS32_ENTRY note in NAME-pvh.elf.
 *   0x1001f0  kernel_info ("LToP", Linux boot protocol 2.15 kernel_info)
 *   0x100200  _start64   64-bit entry (Linux 64-bit boot protocol: long
 *                        mode, identity map, RSI = struct boot_params).
 *                        This is e_entry of the ELFs and load address +
 *                        0x200 of the bzImage payload.
 *
 * Both paths record the CPU state they were entered with (entry_* below),
 * zero .bss, switch to the guest's own stack and call
 * runtime_entry(proto, info_pointer).
 */

#define BOOT_PROTO_LINUX64 1
#define BOOT_PROTO_PVH 2

#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA 0x18

#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define CR4_PAE 0x20
#define CR0_PE_PG 0x80000001
#define PTE_P_RW 0x3
#define PTE_P_RW_PS 0x83

	.section .head.text, "ax"

/* ------------------------------------------------------------------ */
/* PVH entry: 32-bit flat protected mode, paging off, EBX = start_info */
/* ------------------------------------------------------------------ */
	.code32
	.globl _start32
	.type _start32, @function
_start32:
	cli
	movl	$__stack_top, %esp
	pushfl
	popl	%eax
	movl	%eax, entry_rflags
	movl	%cr0, %eax
	movl	%eax, entry_cr0
	movl	%cr4, %eax
	movl	%eax, entry_cr4
	movw	%cs, entry_cs
	movw	%ds, entry_ds
	movw	%es, entry_es
	movw	%ss, entry_ss
	sgdt	entry_gdtr
	cld

	/* Zero .bss (EBX, the start_info pointer, is preserved throughout). */
	movl	$__bss_start, %edi
	movl	$__bss_end, %ecx
	subl	%edi, %ecx
	shrl	$2, %ecx
	xorl	%eax, %eax
	rep stosl

	/* Identity map of the first 4 GiB with 2 MiB pages:
	 * PML4[0] -> PDPT, PDPT[0..3] -> PD0..PD3, PDn[i] = 2 MiB page. */
	movl	$pvh_pml4, %edi
	movl	$(2 * 4096 / 4), %ecx		/* PML4 + PDPT */
	rep stosl
	movl	$(pvh_pdpt + PTE_P_RW), pvh_pml4

	movl	$pvh_pdpt, %edi
	movl	$(pvh_pd + PTE_P_RW), %eax
	movl	$4, %ecx
1:	movl	%eax, (%edi)
	movl	$0, 4(%edi)
	addl	$4096, %eax
	addl	$8, %edi
	decl	%ecx
	jnz	1b

	movl	$pvh_pd, %edi
	movl	$PTE_P_RW_PS, %eax
	movl	$2048, %ecx
2:	movl	%eax, (%edi)
	movl	$0, 4(%edi)
	addl	$0x200000, %eax
	addl	$8, %edi
	decl	%ecx
	jnz	2b

	/* PAE, CR3, EFER.LME, own GDT, then paging on -> long mode. */
	movl	%cr4, %eax
	orl	$CR4_PAE, %eax
	movl	%eax, %cr4
	movl	$pvh_pml4, %eax
	movl	%eax, %cr3
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_LME, %eax
	wrmsr
	lgdt	pvh_gdt_desc
	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movl	%cr0, %eax
	orl	$CR0_PE_PG, %eax
	movl	%eax, %cr0
	ljmp	$SEL_CODE64, $pvh_long_mode

	.code64
pvh_long_mode:
	movq	$__stack_top, %rsp
	movl	$BOOT_PROTO_PVH, %edi
	movl	%ebx, %esi			/* zero-extends */
	call	runtime_entry
	jmp	halt_forever
	.size _start32, . - _start32

/* ------------------------------------------------------------------ */
/* kernel_info (boot protocol 2.15), referenced by the bzImage header  */
/* ------------------------------------------------------------------ */
	.org 0x1f0
	.globl kernel_info
kernel_info:
	.ascii	"LToP"		/* header */
	.long	16		/* size */
	.long	16		/* size_total */
	.long	0		/* setup_type_max: we read no setup_data */

/* ------------------------------------------------------------------ */
/* 64-bit entry (Linux 64-bit boot protocol), RSI = boot_params        */
/* ------------------------------------------------------------------ */
	.org 0x200
	.code64
	.globl _start64
	.type _start64, @function
_start64:
	movq	$__stack_top, %rsp
	pushfq
	popq	%rax
	movq	%rax, entry_rflags(%rip)
	movq	%cr0, %rax
	movq	%rax, entry_cr0(%rip)
	movq	%cr4, %rax
	movq	%rax, entry_cr4(%rip)
	movw	%cs, entry_cs(%rip)
	movw	%ds, entry_ds(%rip)
	movw	%es, entry_es(%rip)
	movw	%ss, entry_ss(%rip)
	sgdt	entry_gdtr(%rip)
	cli
	cld
	movq	%rsi, %rbx			/* boot_params */
	leaq	__bss_start(%rip), %rdi
	leaq	__bss_end(%rip), %rcx
	subq	%rdi, %rcx
	shrq	$3, %rcx
	xorl	%eax, %eax
	rep stosq
	movl	$BOOT_PROTO_LINUX64, %edi
	movq	%rbx, %rsi
	call	runtime_entry
	jmp	halt_forever
	.size _start64, . - _start64

	.globl halt_forever
	.type halt_forever, @function
halt_forever:
	cli
	hlt
	jmp	halt_forever
	.size halt_forever, . - halt_forever

/* ------------------------------------------------------------------ */
	.section .data
	.balign 8
	.globl entry_rflags, entry_cr0, entry_cr4
	.globl entry_cs, entry_ds, entry_es, entry_ss, entry_gdtr
entry_rflags:	.quad 0
entry_cr0:	.quad 0
entry_cr4:	.quad 0
entry_cs:	.word 0
entry_ds:	.word 0
entry_es:	.word 0
entry_ss:	.word 0
entry_gdtr:	.fill 10, 1, 0
	.balign 8
pvh_gdt:
	.quad	0				/* 0x00 null */
	.quad	0x00cf9a000000ffff		/* 0x08 32-bit flat code */
	.quad	0x00af9a000000ffff		/* 0x10 64-bit code */
	.quad	0x00cf92000000ffff		/* 0x18 flat data */
pvh_gdt_end:
	.balign 8
pvh_gdt_desc:
	.word	pvh_gdt_end - pvh_gdt - 1
	.quad	pvh_gdt

	.section .pgtables, "aw", @nobits
	.balign 4096
pvh_pml4:	.skip 4096
pvh_pdpt:	.skip 4096
pvh_pd:		.skip 4 * 4096

	.section .stack, "aw", @nobits
	.balign 16
	.skip 16384
	.globl __stack_top
__stack_top:

	.section .note.GNU-stack, "", @progbits
