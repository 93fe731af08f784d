#!/usr/bin/env python3
"""Wraps a guest program's ELF (linked at 1 MiB) into a bzImage: a boot
sector and one setup sector carrying the setup header (protocol 2.15,
XLF_KERNEL_64), then the flat image whose 64-bit entry is at +0x200.

usage: mkbzimage.py GUEST.elf OUT.bzImage"""
import struct
import sys

LOAD = 0x100000


def flat_image(elf):
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        sys.exit("mkbzimage: not an ELF64 file")
    phoff, = struct.unpack_from("<Q", elf, 32)
    phentsize, phnum = struct.unpack_from("<HH", elf, 54)
    segs = []
    for i in range(phnum):
        p_type, _, off, _, paddr, filesz, memsz, _ = struct.unpack_from(
            "<IIQQQQQQ", elf, phoff + i * phentsize)
        if p_type == 1 and memsz:
            segs.append((paddr, elf[off:off + filesz], memsz))
    start = min(s[0] for s in segs)
    if start != LOAD:
        sys.exit(f"mkbzimage: image starts at {start:#x}, not {LOAD:#x}")
    end_file = max(s[0] + len(s[1]) for s in segs)
    end_mem = max(s[0] + s[2] for s in segs)
    img = bytearray(end_file - start)
    for paddr, data, _ in segs:
        img[paddr - start:paddr - start + len(data)] = data
    return bytes(img), end_mem - start


def main():
    elf = open(sys.argv[1], "rb").read()
    payload, mem = flat_image(elf)
    payload += b"\0" * (-len(payload) % 16)
    setup = bytearray(1024)
    setup[0x1F1] = 1                                        # setup_sects
    struct.pack_into("<I", setup, 0x1F4, len(payload) // 16)  # syssize
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)
    setup[0x200:0x202] = b"\xeb\x66"                        # jmp to 0x268
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x020F)            # protocol 2.15
    setup[0x211] = 0x01                                     # LOADED_HIGH
    struct.pack_into("<I", setup, 0x214, LOAD)              # code32_start
    struct.pack_into("<I", setup, 0x22C, 0x7FFFFFFF)        # initrd_addr_max
    struct.pack_into("<I", setup, 0x230, 0x200000)          # kernel_alignment
    struct.pack_into("<H", setup, 0x236, 0x1)               # XLF_KERNEL_64
    struct.pack_into("<I", setup, 0x238, 2047)              # cmdline_size
    struct.pack_into("<Q", setup, 0x258, LOAD)              # pref_address
    struct.pack_into("<I", setup, 0x260, (mem + 0xFFF) & ~0xFFF)  # init_size
    with open(sys.argv[2], "wb") as f:
        f.write(setup + payload)


if __name__ == "__main__":
    main()
