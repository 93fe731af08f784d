/* Loading a Linux kernel into guest RAM: a bzImage through the 64-bit boot
 * protocol (zero page, e820, identity page tables, GDT, long mode) or an ELF
 * vmlinux through its PVH entry (hvm_start_info, 32-bit protected mode).
 * Everything here works on a host buffer standing for low guest RAM, so the
 * tests can run it without KVM. */
#ifndef VMM_BOOT_H
#define VMM_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vm.h"

/* Low guest memory as the VMM lays it out. */
#define BOOT_GDT_ADDR 0x1000ull
#define BOOT_PVH_INFO_ADDR 0x6000ull
#define BOOT_PVH_MEMMAP_ADDR 0x6040ull
#define BOOT_PVH_MODLIST_ADDR 0x6400ull
#define BOOT_ZERO_PAGE_ADDR 0x7000ull
#define BOOT_STACK_TOP 0x8ff0ull
#define BOOT_PML4_ADDR 0x9000ull
#define BOOT_PDPT_ADDR 0xA000ull
#define BOOT_PD_ADDR 0xB000ull      /* four PDs of 2 MiB pages: 0..4 GiB */
#define BOOT_CMDLINE_ADDR 0x20000ull
#define BOOT_CMDLINE_MAX 0x10000ull
#define BOOT_EBDA_START 0x9FC00ull  /* reserved from here to 1 MiB */
#define BOOT_MPTABLE_ADDR 0xF0000ull
#define BOOT_KERNEL_ADDR 0x100000ull
#define BOOT_GDT_ENTRIES 5

#define BOOT_E820_RAM 1
#define BOOT_E820_RESERVED 2
#define BOOT_E820_MAX 128

/* boot_params (the zero page) and setup header offsets used here */
#define BP_ACPI_RSDP_ADDR 0x070 /* boot protocol 2.14+ */
#define BP_E820_ENTRIES 0x1E8
#define BP_E820_TABLE 0x2D0
#define BP_HDR 0x1F1
#define HDR_SETUP_SECTS 0x1F1
#define HDR_SYSSIZE 0x1F4
#define HDR_BOOT_FLAG 0x1FE
#define HDR_JUMP 0x200
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_CODE32_START 0x214
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21C
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22C
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260
#define XLF_KERNEL_64 0x1

#define PVH_START_MAGIC 0x336ec578u
#define XEN_ELFNOTE_PHYS32_ENTRY 18

enum boot_kind { BOOT_BZIMAGE = 1, BOOT_ELF_PVH };

struct boot_image {
    enum boot_kind kind;
    uint64_t load_addr;     /* where the kernel goes */
    uint64_t load_end;      /* end of what it occupies (init_size / p_memsz) */
    /* bzImage */
    uint16_t protocol;
    size_t setup_bytes;     /* boot sector + setup sectors */
    const uint8_t *payload; /* the protected-mode kernel */
    size_t payload_len;
    uint32_t init_size;
    uint32_t initrd_addr_max;
    uint32_t cmdline_size;  /* the longest command line, NUL included */
    /* ELF */
    uint32_t pvh_entry;
};

/* Guest RAM as the loader sees it: low (at gpa 0) and the size above 4 GiB. */
struct boot_mem {
    uint8_t *low;
    uint64_t low_size;
    uint64_t high_size;
    uint64_t rsdp; /* gpa of the ACPI RSDP (0: none), told to the kernel */
};

struct boot_e820 {
    uint64_t addr, size;
    uint32_t type;
};

/* Recognises an ELF (PVH) or a bzImage and checks it against RAM below the
 * PCI hole. Errors say what is wrong: truncated, wrong magic, protocol too
 * old, no 64-bit entry, no PVH note, larger than RAM. */
int boot_parse(const uint8_t *img, size_t len, uint64_t low_ram, struct boot_image *bi,
               char *err, size_t errlen);
int boot_parse_bzimage(const uint8_t *img, size_t len, uint64_t low_ram,
                       struct boot_image *bi, char *err, size_t errlen);
int boot_parse_elf(const uint8_t *img, size_t len, uint64_t low_ram, struct boot_image *bi,
                   char *err, size_t errlen);

/* The guest's memory map: RAM, the reserved EBDA/BIOS area, RAM above 1 MiB
 * up to the PCI hole (left out, a gap), RAM above 4 GiB. Returns the count. */
unsigned boot_e820(const struct boot_mem *m, struct boot_e820 *out, unsigned max);

/* Identity map of 0..4 GiB with 2 MiB pages at BOOT_PML4_ADDR. */
void boot_write_page_tables(uint8_t *low);
/* Null, 32-bit code (0x08), 64-bit code (0x10), data (0x18), TSS (0x20). */
void boot_write_gdt(uint8_t *low);

/* Where the initrd goes: page aligned, as high as allowed, above the kernel.
 * 0 when it does not fit. */
uint64_t boot_initrd_addr(const struct boot_mem *m, const struct boot_image *bi,
                          size_t initrd_len);

/* Loads the kernel, command line and initrd into m and prepares the entry
 * (zero page or hvm_start_info, GDT, page tables). */
int boot_load(const struct boot_mem *m, const struct boot_image *bi, const uint8_t *img,
              const char *cmdline, const uint8_t *initrd, size_t initrd_len,
              struct vm_entry *entry, char *err, size_t errlen);

#endif
