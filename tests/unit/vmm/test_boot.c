/* boot.c: bzImage and ELF/PVH parsing and rejection, the zero page, e820,
 * initrd placement, hvm_start_info, and the long-mode page tables and GDT
 * (walked as the CPU would). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boot.h"

#define RAM (64u << 20)

static uint8_t *ram;

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* A bzImage: 1 setup sector (1024 bytes of setup) + payload bytes. */
static uint8_t *make_bzimage(size_t payload, uint16_t version, uint32_t init_size, size_t *len)
{
    *len = 1024 + payload;
    uint8_t *img = calloc(1, *len);
    img[HDR_SETUP_SECTS] = 1;
    put32(img + HDR_SYSSIZE, (uint32_t)(payload / 16));
    put16(img + HDR_BOOT_FLAG, 0xAA55);
    img[HDR_JUMP] = 0xEB;
    img[HDR_JUMP + 1] = 0x66;
    memcpy(img + HDR_MAGIC, "HdrS", 4);
    put16(img + HDR_VERSION, version);
    img[HDR_LOADFLAGS] = 1;
    put32(img + HDR_INITRD_ADDR_MAX, 0x7fffffff);
    put16(img + HDR_XLOADFLAGS, XLF_KERNEL_64);
    put32(img + HDR_CMDLINE_SIZE, 2047);
    put32(img + HDR_INIT_SIZE, init_size);
    for (size_t i = 0; i < payload; i++)
        img[1024 + i] = (uint8_t)(i * 7 + 1);
    return img;
}

static int setup(void **state)
{
    ram = calloc(1, RAM);
    return ram ? 0 : -1;
}

static int teardown(void **state)
{
    free(ram);
    return 0;
}

static void test_bzimage_ok(void **state)
{
    size_t len;
    uint8_t *img = make_bzimage(4096, 0x20f, 1 << 20, &len);
    struct boot_image bi;
    char err[256] = "";
    assert_int_equal(boot_parse(img, len, RAM, &bi, err, sizeof(err)), 0);
    assert_int_equal(bi.kind, BOOT_BZIMAGE);
    assert_int_equal(bi.protocol, 0x20f);
    assert_int_equal(bi.setup_bytes, 1024);
    assert_int_equal(bi.payload_len, 4096);
    assert_ptr_equal(bi.payload, img + 1024);
    assert_int_equal(bi.load_addr, 0x100000);
    assert_int_equal(bi.load_end, 0x100000 + (1 << 20));
    assert_int_equal(bi.cmdline_size, 2048);
    /* setup_sects 0 means 4 */
    img[HDR_SETUP_SECTS] = 0;
    put32(img + HDR_SYSSIZE, 0);
    assert_int_equal(boot_parse(img, len, RAM, &bi, err, sizeof(err)), 0);
    assert_int_equal(bi.setup_bytes, 5 * 512);
    free(img);
}

static void test_bzimage_rejects(void **state)
{
    size_t len;
    uint8_t *img = make_bzimage(4096, 0x20f, 1 << 20, &len);
    struct boot_image bi;
    char err[256];

    assert_int_equal(boot_parse(img, 0x200, RAM, &bi, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "truncated"));
    /* the header promises more than the file holds */
    assert_int_equal(boot_parse(img, len - 16, RAM, &bi, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "truncated"));

    memcpy(img + HDR_MAGIC, "HdrX", 4);
    assert_int_equal(boot_parse(img, len, RAM, &bi, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "HdrS"));
    memcpy(img + HDR_MAGIC, "HdrS", 4);

    put16(img + HDR_VERSION, 0x204);
    assert_int_equal(boot_parse(img, len, RAM, &bi, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "2.04 is too old"));
    put16(img + HDR_VERSION, 0x20f);

    put16(img + HDR_XLOADFLAGS, 0);
    assert_int_equal(boot_parse(img, len, RAM, &bi, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "64-bit"));
    put16(img + HDR_XLOADFLAGS, XLF_KERNEL_64);

    put32(img + HDR_INIT_SIZE, RAM);  /* 1 MiB + init_size > RAM */
    assert_int_equal(boot_parse(img, len, RAM, &bi, err, sizeof(err)), -E2BIG);
    assert_non_null(strstr(err, "raise --memory"));
    free(img);
}

static void test_e820(void **state)
{
    struct boot_mem m = {.low = ram, .low_size = 3ull << 30, .high_size = 1ull << 30};
    struct boot_e820 e[8];
    unsigned n = boot_e820(&m, e, 8);
    assert_int_equal(n, 4);
    assert_int_equal(e[0].addr, 0);
    assert_int_equal(e[0].size, BOOT_EBDA_START);
    assert_int_equal(e[0].type, BOOT_E820_RAM);
    assert_int_equal(e[1].addr, BOOT_EBDA_START);
    assert_int_equal(e[1].addr + e[1].size, 0x100000);
    assert_int_equal(e[1].type, BOOT_E820_RESERVED);
    assert_int_equal(e[2].addr, 0x100000);
    assert_int_equal(e[2].addr + e[2].size, 3ull << 30); /* stops at the PCI hole */
    assert_int_equal(e[3].addr, 4ull << 30);
    assert_int_equal(e[3].size, 1ull << 30);
    /* the MP table lives in the reserved range */
    assert_true(BOOT_MPTABLE_ADDR >= e[1].addr && BOOT_MPTABLE_ADDR < e[1].addr + e[1].size);
    m.high_size = 0;
    assert_int_equal(boot_e820(&m, e, 8), 3);
}

static void test_zero_page_and_initrd(void **state)
{
    size_t len;
    uint8_t *img = make_bzimage(8192, 0x20f, 2 << 20, &len);
    struct boot_image bi;
    char err[256];
    struct boot_mem m = {.low = ram, .low_size = RAM, .rsdp = 0xE0000};
    assert_int_equal(boot_parse(img, len, RAM, &bi, err, sizeof(err)), 0);
    uint8_t initrd[10000];
    memset(initrd, 0x5a, sizeof(initrd));
    struct vm_entry e;
    assert_int_equal(boot_load(&m, &bi, img, "console=ttyS0 quiet", initrd, sizeof(initrd),
                               &e, err, sizeof(err)), 0);
    const uint8_t *zp = ram + BOOT_ZERO_PAGE_ADDR;
    assert_memory_equal(zp + HDR_MAGIC, "HdrS", 4);
    assert_int_equal(zp[HDR_TYPE_OF_LOADER], 0xff);
    assert_int_equal(get16(zp + HDR_VERSION), 0x20f);
    assert_int_equal(get32(zp + HDR_CMD_LINE_PTR), BOOT_CMDLINE_ADDR);
    assert_string_equal((const char *)ram + BOOT_CMDLINE_ADDR, "console=ttyS0 quiet");
    /* the ACPI tables are pointed at (boot_params.acpi_rsdp_addr) */
    assert_int_equal(get64(zp + BP_ACPI_RSDP_ADDR), 0xE0000);
    /* kernel at 1 MiB */
    assert_memory_equal(ram + 0x100000, img + 1024, 8192);
    /* initrd: page aligned, as high as possible, above the kernel */
    uint32_t ia = get32(zp + HDR_RAMDISK_IMAGE);
    assert_int_equal(get32(zp + HDR_RAMDISK_SIZE), sizeof(initrd));
    assert_int_equal(ia & 0xfff, 0);
    assert_true(ia + sizeof(initrd) <= RAM);
    assert_true(ia + sizeof(initrd) > RAM - 4096 - sizeof(initrd));
    assert_true(ia >= 0x100000 + (2 << 20));
    assert_int_equal(ram[ia], 0x5a);
    /* e820 in the zero page */
    assert_int_equal(zp[BP_E820_ENTRIES], 3);
    const uint8_t *t = zp + BP_E820_TABLE;
    assert_int_equal(get64(t + 40), 0x100000);
    assert_int_equal(get64(t + 48), RAM - 0x100000);
    assert_int_equal(get32(t + 56), BOOT_E820_RAM);
    assert_int_equal(get32(t + 36), BOOT_E820_RESERVED);
    /* entry state */
    assert_true(e.long_mode);
    assert_int_equal(e.rip, 0x100200);
    assert_int_equal(e.rsi, BOOT_ZERO_PAGE_ADDR);
    assert_int_equal(e.cr3, BOOT_PML4_ADDR);
    assert_int_equal(e.gdt_base, BOOT_GDT_ADDR);

    /* initrd_addr_max is honoured */
    put32(img + HDR_INITRD_ADDR_MAX, (16 << 20) - 1);
    assert_int_equal(boot_parse(img, len, RAM, &bi, err, sizeof(err)), 0);
    uint64_t a = boot_initrd_addr(&m, &bi, sizeof(initrd));
    assert_true(a + sizeof(initrd) <= 16 << 20);
    assert_int_equal(a, ((16u << 20) - sizeof(initrd)) & ~0xfffu);
    /* an initrd that does not fit is refused */
    assert_int_equal(boot_initrd_addr(&m, &bi, 15 << 20), 0);
    /* a command line longer than cmdline_size is refused */
    char *big = malloc(3000);
    memset(big, 'a', 2999);
    big[2999] = 0;
    assert_int_equal(boot_load(&m, &bi, img, big, NULL, 0, &e, err, sizeof(err)), -E2BIG);
    assert_non_null(strstr(err, "command line"));
    free(big);
    free(img);
}

/* Translates a linear address through the tables at cr3, as the MMU does
 * in long mode with 4-level paging. Returns -1 if not present. */
static int64_t walk(uint64_t cr3, uint64_t va)
{
    uint64_t e = get64(ram + cr3 + ((va >> 39) & 511) * 8);
    if (!(e & 1))
        return -1;
    e = get64(ram + (e & ~0xfffull) + ((va >> 30) & 511) * 8);
    if (!(e & 1))
        return -1;
    if (e & 0x80)
        return (int64_t)((e & ~0x3fffffffull) + (va & 0x3fffffff));
    e = get64(ram + (e & ~0xfffull) + ((va >> 21) & 511) * 8);
    if (!(e & 1))
        return -1;
    assert_true(e & 2); /* writable */
    if (e & 0x80)
        return (int64_t)((e & ~0x1fffffull & 0x000ffffffffff000ull) + (va & 0x1fffff));
    return -1; /* no 4 KiB pages here */
}

static void test_page_tables(void **state)
{
    boot_write_page_tables(ram);
    static const uint64_t probes[] = {0, 0x7000, 0x100200, 0x1234567, 0xbfffffff,
                                      0xc0000000, 0xfec00000, 0xfee00000, 0xffffffff};
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
        assert_int_equal(walk(BOOT_PML4_ADDR, probes[i]), (int64_t)probes[i]);
    assert_int_equal(walk(BOOT_PML4_ADDR, 0x100000000ull), -1);
    /* the tables do not overlap what else the loader puts in low memory */
    assert_true(BOOT_PML4_ADDR >= BOOT_ZERO_PAGE_ADDR + 4096);
    assert_true(BOOT_PD_ADDR + 4 * 4096 <= BOOT_CMDLINE_ADDR);
}

static void test_gdt(void **state)
{
    boot_write_gdt(ram);
    const uint8_t *g = ram + BOOT_GDT_ADDR;
    uint64_t code64 = get64(g + 0x10), data = get64(g + 0x18), code32 = get64(g + 0x08);
    /* access byte: present, S=1, code, readable */
    assert_int_equal((code64 >> 40) & 0xff, 0x9b);
    assert_int_equal((code64 >> 53) & 1, 1); /* L */
    assert_int_equal((code64 >> 54) & 1, 0); /* D must be 0 with L */
    assert_int_equal((code32 >> 40) & 0xff, 0x9b);
    assert_int_equal((code32 >> 54) & 1, 1); /* 32-bit */
    assert_int_equal((code32 >> 55) & 1, 1); /* 4 KiB granularity */
    assert_int_equal((data >> 40) & 0xff, 0x93);
    assert_int_equal(code32 & 0xffff, 0xffff);
    assert_int_equal((code32 >> 48) & 0xf, 0xf);     /* limit 4 GiB */
    assert_int_equal(get64(g), 0);
}

/* A minimal ELF64 vmlinux: one PT_LOAD at 16 MiB, optionally a PT_NOTE
 * with the PVH entry. */
static uint8_t *make_elf(bool note, uint64_t paddr, uint64_t memsz, size_t *len)
{
    *len = 0x1000 + 0x100;
    uint8_t *f = calloc(1, *len);
    memcpy(f, "\177ELF", 4);
    f[4] = 2;
    f[5] = 1;
    f[6] = 1;
    put16(f + 16, 2);
    put16(f + 18, 62);
    put64(f + 32, 64);     /* phoff */
    put16(f + 54, 56);
    put16(f + 56, note ? 2 : 1);
    uint8_t *ph = f + 64;
    put32(ph, 1);
    put64(ph + 8, 0x1000);
    put64(ph + 16, 0xffffffff81000000ull);
    put64(ph + 24, paddr);
    put64(ph + 32, 0x100);
    put64(ph + 40, memsz);
    for (int i = 0; i < 0x100; i++)
        f[0x1000 + i] = (uint8_t)(0xc0 + i);
    if (note) {
        ph += 56;
        put32(ph, 4);
        put64(ph + 8, 0x200);
        put64(ph + 32, 20);
        uint8_t *n = f + 0x200;
        put32(n, 4);
        put32(n + 4, 4);
        put32(n + 8, XEN_ELFNOTE_PHYS32_ENTRY);
        memcpy(n + 12, "Xen", 4);
        put32(n + 16, (uint32_t)paddr + 0x40);
    }
    return f;
}

static void test_pvh(void **state)
{
    size_t len;
    uint8_t *f = make_elf(true, 16 << 20, 0x2000, &len);
    struct boot_image bi;
    char err[256];
    struct boot_mem m = {.low = ram, .low_size = RAM, .rsdp = 0xE0000};
    assert_int_equal(boot_parse(f, len, RAM, &bi, err, sizeof(err)), 0);
    assert_int_equal(bi.kind, BOOT_ELF_PVH);
    assert_int_equal(bi.pvh_entry, (16 << 20) + 0x40);
    assert_int_equal(bi.load_addr, 16 << 20);
    assert_int_equal(bi.load_end, (16 << 20) + 0x2000);
    memset(ram + (16 << 20) + 0x100, 0xee, 0x100); /* bss must come back zero */
    uint8_t initrd[100] = {1, 2, 3};
    struct vm_entry e;
    assert_int_equal(boot_load(&m, &bi, f, "root=/dev/vda", initrd, sizeof(initrd), &e, err,
                               sizeof(err)), 0);
    assert_false(e.long_mode);
    assert_int_equal(e.rip, (16 << 20) + 0x40);
    assert_int_equal(e.rbx, BOOT_PVH_INFO_ADDR);
    assert_int_equal(ram[(16 << 20)], 0xc0);
    assert_int_equal(ram[(16 << 20) + 0x100], 0);
    const uint8_t *si = ram + BOOT_PVH_INFO_ADDR;
    assert_int_equal(get32(si), PVH_START_MAGIC);
    assert_int_equal(get32(si + 4), 1);
    assert_int_equal(get32(si + 12), 1); /* nr_modules */
    const uint8_t *mod = ram + get64(si + 16);
    assert_int_equal(get64(mod + 8), sizeof(initrd));
    assert_int_equal(ram[get64(mod)], 1);
    assert_string_equal((const char *)ram + get64(si + 24), "root=/dev/vda");
    assert_int_equal(get64(si + 32), 0xE0000); /* rsdp_paddr */
    assert_int_equal(get32(si + 48), 3); /* memmap entries */
    const uint8_t *mm = ram + get64(si + 40);
    assert_int_equal(get64(mm + 2 * 24), 0x100000);
    assert_int_equal(get32(mm + 24 + 16), BOOT_E820_RESERVED);
    free(f);

    f = make_elf(false, 16 << 20, 0x2000, &len);
    assert_int_equal(boot_parse(f, len, RAM, &bi, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "PVH"));
    free(f);
    f = make_elf(true, 16 << 20, RAM, &len);
    assert_int_equal(boot_parse(f, len, RAM, &bi, err, sizeof(err)), -E2BIG);
    free(f);
    f = make_elf(true, 16 << 20, 0x2000, &len);
    assert_int_equal(boot_parse(f, 100, RAM, &bi, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "truncated"));
    f[18] = 3; /* EM_386 */
    assert_int_equal(boot_parse(f, len, RAM, &bi, err, sizeof(err)), -EINVAL);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bzimage_ok),
        cmocka_unit_test(test_bzimage_rejects),
        cmocka_unit_test(test_e820),
        cmocka_unit_test(test_zero_page_and_initrd),
        cmocka_unit_test(test_page_tables),
        cmocka_unit_test(test_gdt),
        cmocka_unit_test(test_pvh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
