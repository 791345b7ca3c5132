/*
 * XEN_ELFNOTE_PHYS32_ENTRY: tells a PVH-capable loader to enter the image
 * at _start32 in 32-bit protected mode with EBX = struct hvm_start_info.
 * Linked only into NAME-pvh.elf; the linker puts it in a PT_NOTE segment.
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

	.section .note.Xen, "a", @note
	.balign 4
	.long	4				/* namesz: "Xen\0" */
	.long	4				/* descsz: 32-bit address */
	.long	XEN_ELFNOTE_PHYS32_ENTRY	/* type */
	.asciz	"Xen"
	.balign 4
	.long	_start32			/* desc: physical entry */
	.balign 4

	.section .note.GNU-stack, "", @progbits
