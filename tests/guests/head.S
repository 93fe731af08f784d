/* Entry points of the guest programs, and the code that must be assembly:
 * long-mode setup for the PVH entry and for APs (real mode -> 64-bit), the
 * interrupt stubs, and the static identity page tables (0..4 GiB). */
#define AP_TRAMP 0x8000
#define STACK_SIZE 16384
#define AP_STACK_SIZE 8192
#define MAX_APS 15

    .section .text.head, "ax"
    .code32
    .globl _start32
_start32:               /* bzImage 32-bit entry: not supported */
    hlt
    jmp _start32

    .org 0x200
    .code64
    .globl _start64
_start64:               /* bzImage 64-bit entry: RSI = zero page */
    cli
    mov %rsi, %r12
    xor %r13d, %r13d
    jmp common64

    .code32
pvh_start:              /* PVH entry: 32-bit, paging off, EBX = hvm_start_info */
    cli
    mov %ebx, %edi
    lgdt gdt_ptr
    ljmp $0x08, $1f
1:  mov $0x18, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %cr4, %eax
    or $0x20, %eax              /* PAE */
    mov %eax, %cr4
    mov $pml4, %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx       /* EFER.LME */
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax        /* PG | PE */
    mov %eax, %cr0
    ljmp $0x10, $pvh64

    .code64
pvh64:
    xor %r12d, %r12d
    mov %edi, %r13d
    /* fall through */
common64:
    lgdt gdt_ptr(%rip)
    mov $pml4, %rax
    mov %rax, %cr3
    mov $0x18, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    lea stack_top(%rip), %rsp
    mov %r12, %rdi
    mov %r13, %rsi
    call guest_entry
2:  cli
    hlt
    jmp 2b

/* APs: started by INIT-SIPI-SIPI at AP_TRAMP (the BSP copies this there). */
    .code16
    .globl ap_tramp_start, ap_tramp_end
ap_tramp_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    lgdtl AP_TRAMP + (tramp_gdt_ptr - ap_tramp_start)
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x08, $(AP_TRAMP + (ap_pm32 - ap_tramp_start))
    .code32
ap_pm32:
    mov $0x18, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %cr4, %eax
    or $0x20, %eax
    mov %eax, %cr4
    mov $pml4, %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax
    mov %eax, %cr0
    ljmp $0x10, $ap_entry64
    .balign 8
tramp_gdt_ptr:
    .word gdt_end - gdt - 1
    .long gdt
ap_tramp_end:

    .code64
ap_entry64:
    mov $0x18, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov $1, %eax
    lock xadd %eax, ap_count(%rip)  /* this AP's slot */
    mov %eax, %edi
    inc %eax
    shl $13, %rax                   /* AP_STACK_SIZE */
    lea ap_stacks(%rip), %rsp
    add %rax, %rsp
    call guest_ap_entry
3:  cli
    hlt
    jmp 3b

/* Interrupt stubs, 16 bytes apart: push a dummy error code where the CPU
 * pushes none, then the vector; guest_isr(vector, error, frame). */
    .balign 16
    .globl isr_stubs
isr_stubs:
    .set v, 0
    .rept 256
    .balign 16
    .if (v == 8) || ((v >= 10) && (v <= 14)) || (v == 17) || (v == 21) || (v == 29) || (v == 30)
    push $v
    .else
    push $0
    push $v
    .endif
    jmp isr_common
    .set v, v + 1
    .endr

isr_common:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    mov 72(%rsp), %rdi
    mov 80(%rsp), %rsi
    lea 88(%rsp), %rdx
    cld
    call guest_isr
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    add $16, %rsp
    iretq

/* The PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY). */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .balign 4
    .long pvh_start
    .balign 4

    .data
    .balign 16
    .globl gdt
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff    /* 0x08 32-bit code */
    .quad 0x00af9a000000ffff    /* 0x10 64-bit code */
    .quad 0x00cf92000000ffff    /* 0x18 data */
gdt_end:
    .balign 8
gdt_ptr:
    .word gdt_end - gdt - 1
    .quad gdt
    .globl ap_count
ap_count:
    .long 0

    .balign 4096
pml4:
    .quad pdpt + 3
    .fill 511, 8, 0
pdpt:
    .quad pd + 0x0003, pd + 0x1003, pd + 0x2003, pd + 0x3003
    .fill 508, 8, 0
pd:
    .set i, 0
    .rept 2048
    .quad (i << 21) | 0x83
    .set i, i + 1
    .endr

    .bss
    .balign 16
stack:
    .skip STACK_SIZE
stack_top:
    .globl ap_stacks
ap_stacks:
    .skip AP_STACK_SIZE * (MAX_APS + 1)
