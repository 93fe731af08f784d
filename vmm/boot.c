/* Linux boot: bzImage (64-bit boot protocol) and ELF vmlinux (PVH). */
#include "util.h"
#include "boot.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>


static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

/* ---------------------------------------------------------------- bzImage */

int boot_parse_bzimage(const uint8_t *img, size_t len, uint64_t low_ram,
                       struct boot_image *bi, char *err, size_t errlen)
{
    memset(bi, 0, sizeof(*bi));
    if (len < 0x264) {
        errf(err, errlen, "truncated: %zu bytes is shorter than a bzImage setup header", len);
        return -EINVAL;
    }
    if (memcmp(img + HDR_MAGIC, "HdrS", 4) != 0) {
        errf(err, errlen, "not a bzImage: no \"HdrS\" magic at 0x202 (nor an ELF vmlinux)");
        return -EINVAL;
    }
    bi->protocol = rd16(img + HDR_VERSION);
    if (bi->protocol < 0x206) {
        errf(err, errlen, "boot protocol %u.%02u is too old: 2.06 or later is needed",
             bi->protocol >> 8, bi->protocol & 0xff);
        return -EINVAL;
    }
    if (bi->protocol >= 0x20c && !(rd16(img + HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
        errf(err, errlen, "the kernel has no 64-bit entry (XLF_KERNEL_64 not set): a 32-bit kernel?");
        return -EINVAL;
    }
    unsigned sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
    bi->setup_bytes = (size_t)(sects + 1) * 512;
    uint64_t syssize = (uint64_t)rd32(img + HDR_SYSSIZE) * 16;
    if (len <= bi->setup_bytes || syssize > len - bi->setup_bytes) {
        errf(err, errlen, "truncated: the header announces %zu + %" PRIu64
             " bytes, the file has %zu", bi->setup_bytes, syssize, len);
        return -EINVAL;
    }
    bi->kind = BOOT_BZIMAGE;
    bi->payload = img + bi->setup_bytes;
    bi->payload_len = len - bi->setup_bytes;
    bi->cmdline_size = rd32(img + HDR_CMDLINE_SIZE) + 1;
    bi->initrd_addr_max = rd32(img + HDR_INITRD_ADDR_MAX);
    bi->init_size = bi->protocol >= 0x20a ? rd32(img + HDR_INIT_SIZE) : 0;
    bi->load_addr = BOOT_KERNEL_ADDR;
    uint64_t need = bi->init_size > bi->payload_len ? bi->init_size : bi->payload_len;
    bi->load_end = bi->load_addr + need;
    if (bi->load_end > low_ram) {
        errf(err, errlen, "the kernel needs %" PRIu64 " MiB of RAM from 1 MiB (init_size), "
             "the VM has %" PRIu64 " MiB: raise --memory",
             (need + (1 << 20) - 1) >> 20, low_ram >> 20);
        return -E2BIG;
    }
    return 0;
}

/* ---------------------------------------------------------------- ELF / PVH */

#define ELF_PT_LOAD 1
#define ELF_PT_NOTE 4

static int pvh_find_note(const uint8_t *p, size_t n, uint32_t *entry)
{
    size_t off = 0;
    while (n - off >= 12) {
        uint32_t namesz = rd32(p + off), descsz = rd32(p + off + 4), type = rd32(p + off + 8);
        size_t name_al = ((size_t)namesz + 3) & ~(size_t)3;
        size_t desc_al = ((size_t)descsz + 3) & ~(size_t)3;
        off += 12;
        if (name_al > n - off || desc_al > n - off - name_al)
            return -1;
        if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 && !memcmp(p + off, "Xen", 4) &&
            (descsz == 4 || descsz == 8)) {
            *entry = rd32(p + off + name_al);
            return 0;
        }
        off += name_al + desc_al;
    }
    return -1;
}

int boot_parse_elf(const uint8_t *img, size_t len, uint64_t low_ram, struct boot_image *bi,
                   char *err, size_t errlen)
{
    memset(bi, 0, sizeof(*bi));
    if (len < 64 || memcmp(img, "\177ELF", 4) != 0) {
        errf(err, errlen, "truncated or not an ELF file");
        return -EINVAL;
    }
    if (img[4] != 2 || img[5] != 1 || rd16(img + 18) != 62) {
        errf(err, errlen, "not a 64-bit little-endian x86-64 ELF vmlinux");
        return -EINVAL;
    }
    uint64_t phoff = rd64(img + 32);
    uint16_t phentsize = rd16(img + 54), phnum = rd16(img + 56);
    if (phentsize < 56 || phoff > len || (uint64_t)phnum * phentsize > len - phoff) {
        errf(err, errlen, "truncated: program headers lie outside the file");
        return -EINVAL;
    }
    bool have_entry = false, have_load = false;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *ph = img + phoff + (uint64_t)i * phentsize;
        uint32_t type = rd32(ph);
        uint64_t off = rd64(ph + 8), paddr = rd64(ph + 24), filesz = rd64(ph + 32),
                 memsz = rd64(ph + 40);
        if (type != ELF_PT_LOAD && type != ELF_PT_NOTE)
            continue;
        if (off > len || filesz > len - off) {
            errf(err, errlen, "truncated: segment %u lies outside the file", i);
            return -EINVAL;
        }
        if (type == ELF_PT_NOTE) {
            if (!have_entry && pvh_find_note(img + off, filesz, &bi->pvh_entry) == 0)
                have_entry = true;
            continue;
        }
        if (filesz > memsz || paddr + memsz < paddr) {
            errf(err, errlen, "segment %u: bad sizes", i);
            return -EINVAL;
        }
        if (!memsz)
            continue;
        have_load = true;
        if (paddr < lo)
            lo = paddr;
        if (paddr + memsz > hi)
            hi = paddr + memsz;
    }
    if (!have_load) {
        errf(err, errlen, "the ELF file has nothing to load");
        return -EINVAL;
    }
    if (!have_entry) {
        errf(err, errlen, "the ELF vmlinux has no PVH entry (XEN_ELFNOTE_PHYS32_ENTRY note): "
             "boot its bzImage instead");
        return -EINVAL;
    }
    if (lo < BOOT_KERNEL_ADDR) {
        errf(err, errlen, "the ELF file loads at 0x%" PRIx64 ", below 1 MiB", lo);
        return -EINVAL;
    }
    if (hi > low_ram) {
        errf(err, errlen, "the kernel needs RAM up to %" PRIu64 " MiB, the VM has %" PRIu64
             " MiB: raise --memory", (hi + (1 << 20) - 1) >> 20, low_ram >> 20);
        return -E2BIG;
    }
    bi->kind = BOOT_ELF_PVH;
    bi->load_addr = lo;
    bi->load_end = hi;
    bi->cmdline_size = BOOT_CMDLINE_MAX;
    bi->initrd_addr_max = 0xffffffff;
    return 0;
}

int boot_parse(const uint8_t *img, size_t len, uint64_t low_ram, struct boot_image *bi,
               char *err, size_t errlen)
{
    if (len >= 4 && !memcmp(img, "\177ELF", 4))
        return boot_parse_elf(img, len, low_ram, bi, err, errlen);
    return boot_parse_bzimage(img, len, low_ram, bi, err, errlen);
}

/* ---------------------------------------------------------------- layout */

unsigned boot_e820(const struct boot_mem *m, struct boot_e820 *out, unsigned max)
{
    struct boot_e820 v[4];
    unsigned n = 0;
    v[n++] = (struct boot_e820){0, BOOT_EBDA_START, BOOT_E820_RAM};
    v[n++] = (struct boot_e820){BOOT_EBDA_START, BOOT_KERNEL_ADDR - BOOT_EBDA_START,
                                BOOT_E820_RESERVED};
    if (m->low_size > BOOT_KERNEL_ADDR)
        v[n++] = (struct boot_e820){BOOT_KERNEL_ADDR, m->low_size - BOOT_KERNEL_ADDR,
                                    BOOT_E820_RAM};
    if (m->high_size)
        v[n++] = (struct boot_e820){VM_HIGH_RAM_START, m->high_size, BOOT_E820_RAM};
    if (n > max)
        n = max;
    memcpy(out, v, n * sizeof(*v));
    return n;
}

void boot_write_page_tables(uint8_t *low)
{
    uint8_t *pml4 = low + BOOT_PML4_ADDR, *pdpt = low + BOOT_PDPT_ADDR;
    memset(pml4, 0, 4096);
    memset(pdpt, 0, 4096);
    wr64(pml4, BOOT_PDPT_ADDR | 0x3); /* present, writable */
    for (unsigned i = 0; i < 4; i++) {
        uint64_t pd_addr = BOOT_PD_ADDR + i * 4096ull;
        wr64(pdpt + i * 8, pd_addr | 0x3);
        for (unsigned j = 0; j < 512; j++)
            wr64(low + pd_addr + j * 8, (((uint64_t)i << 30) | ((uint64_t)j << 21)) | 0x83);
    }
}

void boot_write_gdt(uint8_t *low)
{
    static const uint64_t gdt[BOOT_GDT_ENTRIES] = {
        0,
        0x00cf9b000000ffffull, /* 0x08: 32-bit code, flat */
        0x00af9b000000ffffull, /* 0x10: 64-bit code */
        0x00cf93000000ffffull, /* 0x18: data, flat */
        0x00008b0000000067ull, /* 0x20: TSS (busy), base 0 */
    };
    for (unsigned i = 0; i < BOOT_GDT_ENTRIES; i++)
        wr64(low + BOOT_GDT_ADDR + i * 8, gdt[i]);
}

uint64_t boot_initrd_addr(const struct boot_mem *m, const struct boot_image *bi,
                          size_t initrd_len)
{
    uint64_t top = m->low_size;
    if ((uint64_t)bi->initrd_addr_max + 1 < top)
        top = (uint64_t)bi->initrd_addr_max + 1;
    if (initrd_len > top)
        return 0;
    uint64_t addr = (top - initrd_len) & ~0xfffull;
    uint64_t kend = (bi->load_end + 0xfff) & ~0xfffull;
    return addr >= kend ? addr : 0;
}

/* ---------------------------------------------------------------- loading */

static int load_elf_segments(const struct boot_mem *m, const uint8_t *img)
{
    uint64_t phoff = rd64(img + 32);
    uint16_t phentsize = rd16(img + 54), phnum = rd16(img + 56);
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *ph = img + phoff + (uint64_t)i * phentsize;
        if (rd32(ph) != ELF_PT_LOAD)
            continue;
        uint64_t off = rd64(ph + 8), paddr = rd64(ph + 24), filesz = rd64(ph + 32),
                 memsz = rd64(ph + 40);
        memcpy(m->low + paddr, img + off, filesz);
        memset(m->low + paddr + filesz, 0, memsz - filesz);
    }
    return 0;
}

static void write_zero_page(const struct boot_mem *m, const struct boot_image *bi,
                            const uint8_t *img, uint64_t initrd_addr, size_t initrd_len)
{
    uint8_t *zp = m->low + BOOT_ZERO_PAGE_ADDR;
    memset(zp, 0, 4096);
    size_t hdr_end = 0x202 + img[HDR_JUMP + 1];
    if (hdr_end > bi->setup_bytes)
        hdr_end = bi->setup_bytes;
    if (hdr_end > 0x290)
        hdr_end = 0x290;
    memcpy(zp + BP_HDR, img + BP_HDR, hdr_end - BP_HDR);
    zp[HDR_TYPE_OF_LOADER] = 0xff;
    wr64(zp + BP_ACPI_RSDP_ADDR, m->rsdp);
    wr32(zp + HDR_CODE32_START, (uint32_t)bi->load_addr);
    wr32(zp + HDR_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE_ADDR);
    wr32(zp + HDR_RAMDISK_IMAGE, (uint32_t)initrd_addr);
    wr32(zp + HDR_RAMDISK_SIZE, (uint32_t)initrd_len);
    struct boot_e820 e[BOOT_E820_MAX];
    unsigned n = boot_e820(m, e, BOOT_E820_MAX);
    zp[BP_E820_ENTRIES] = (uint8_t)n;
    for (unsigned i = 0; i < n; i++) {
        uint8_t *p = zp + BP_E820_TABLE + i * 20;
        wr64(p, e[i].addr);
        wr64(p + 8, e[i].size);
        wr32(p + 16, e[i].type);
    }
}

static void write_pvh_info(const struct boot_mem *m, uint64_t initrd_addr, size_t initrd_len)
{
    uint8_t *si = m->low + BOOT_PVH_INFO_ADDR;
    memset(si, 0, BOOT_PVH_MODLIST_ADDR + 32 - BOOT_PVH_INFO_ADDR);
    struct boot_e820 e[16];
    unsigned n = boot_e820(m, e, 16);
    for (unsigned i = 0; i < n; i++) {
        uint8_t *p = m->low + BOOT_PVH_MEMMAP_ADDR + i * 24;
        wr64(p, e[i].addr);
        wr64(p + 8, e[i].size);
        wr32(p + 16, e[i].type);
    }
    wr32(si + 0, PVH_START_MAGIC);
    wr32(si + 4, 1); /* version: has the memmap */
    if (initrd_len) {
        uint8_t *mod = m->low + BOOT_PVH_MODLIST_ADDR;
        wr64(mod, initrd_addr);
        wr64(mod + 8, initrd_len);
        wr32(si + 12, 1);
        wr64(si + 16, BOOT_PVH_MODLIST_ADDR);
    }
    wr64(si + 24, BOOT_CMDLINE_ADDR);
    wr64(si + 32, m->rsdp);
    wr64(si + 40, BOOT_PVH_MEMMAP_ADDR);
    wr32(si + 48, n);
}

int boot_load(const struct boot_mem *m, const struct boot_image *bi, const uint8_t *img,
              const char *cmdline, const uint8_t *initrd, size_t initrd_len,
              struct vm_entry *entry, char *err, size_t errlen)
{
    size_t cl = cmdline ? strlen(cmdline) + 1 : 1;
    if (cl > bi->cmdline_size || cl > BOOT_CMDLINE_MAX) {
        errf(err, errlen, "the command line is %zu bytes, the kernel takes at most %u",
             cl - 1, (bi->cmdline_size < BOOT_CMDLINE_MAX ? bi->cmdline_size
                                                           : (uint32_t)BOOT_CMDLINE_MAX) - 1);
        return -E2BIG;
    }
    if (bi->load_end > m->low_size) {
        errf(err, errlen, "the kernel does not fit in RAM");
        return -E2BIG;
    }
    uint64_t initrd_addr = 0;
    if (initrd_len) {
        initrd_addr = boot_initrd_addr(m, bi, initrd_len);
        if (!initrd_addr) {
            errf(err, errlen, "the initrd (%zu KiB) does not fit between the kernel and the "
                 "end of RAM below %" PRIu64 " MiB: raise --memory",
                 initrd_len >> 10, m->low_size >> 20);
            return -E2BIG;
        }
        memcpy(m->low + initrd_addr, initrd, initrd_len);
    }
    memset(m->low + BOOT_CMDLINE_ADDR, 0, cl);
    if (cmdline)
        memcpy(m->low + BOOT_CMDLINE_ADDR, cmdline, cl);
    boot_write_gdt(m->low);
    memset(entry, 0, sizeof(*entry));
    entry->gdt_base = BOOT_GDT_ADDR;
    entry->gdt_limit = BOOT_GDT_ENTRIES * 8 - 1;
    if (bi->kind == BOOT_BZIMAGE) {
        memcpy(m->low + bi->load_addr, bi->payload, bi->payload_len);
        write_zero_page(m, bi, img, initrd_addr, initrd_len);
        boot_write_page_tables(m->low);
        entry->long_mode = true;
        entry->cr3 = BOOT_PML4_ADDR;
        entry->rip = bi->load_addr + 0x200;
        entry->rsi = BOOT_ZERO_PAGE_ADDR;
        entry->rsp = BOOT_STACK_TOP;
    } else {
        load_elf_segments(m, img);
        write_pvh_info(m, initrd_addr, initrd_len);
        entry->long_mode = false;
        entry->rip = bi->pvh_entry;
        entry->rbx = BOOT_PVH_INFO_ADDR;
        entry->rsp = BOOT_STACK_TOP;
    }
    return 0;
}
