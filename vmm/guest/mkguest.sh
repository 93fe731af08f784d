#!/bin/bash
# Build the e2e lab guest: Debian's cloud kernel + a busybox initramfs with the
# virtio-net modules, iperf3 (and tcpdump), and an /init that configures eth0 from
# the kernel command line and then serves commands on ttyS1 (see init.sh).
#
# Usage: vmm/guest/mkguest.sh [OUTDIR]     (default: build/guest)
# Output: OUTDIR/vmlinuz, OUTDIR/vmlinux (PVH entry, boots faster; when lz4 is there),
#         OUTDIR/initrd.gz, OUTDIR/kernel-version. Skips work that is up to date.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-$ROOT/build/guest}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
step() { printf '[mkguest] %s\n' "$*"; }

MODULES="virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio virtio_pci failover
 net_failover virtio_net llc stp garp mrp 8021q"
BINS="/usr/bin/iperf3 /usr/bin/tcpdump /usr/sbin/ip"

# 1. kernel package: the newest 6.1 cloud kernel apt knows of (else the one cached).
pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' 2>/dev/null |
      awk '{print $1}' | sort -V | tail -1 || true)
if [ -z "$pkg" ]; then
    cached=$(ls "$OUT"/deb/linux-image-*.deb 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$cached" ] || { echo "mkguest: no linux-image-6.1.0-*-cloud-amd64 known to apt (run apt-get update)" >&2; exit 1; }
    pkg=$(basename "$cached" | cut -d_ -f1)
fi
kver=${pkg#linux-image-}

inputs=$( { echo "$pkg $MODULES"; cat "$0" "$HERE/init.sh";
            for b in /bin/busybox $BINS; do [ -e "$b" ] && stat -c '%n %s %Y' "$b"; done; } |
          sha256sum | cut -d' ' -f1)
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$inputs" ] &&
   [ -f "$OUT/initrd.gz" ] && [ -f "$OUT/vmlinuz" ]; then
    step "up to date ($kver) in $OUT"
    exit 0
fi

mkdir -p "$OUT/deb"
deb=$(ls "$OUT"/deb/"${pkg}"_*.deb 2>/dev/null | tail -1 || true)
if [ -z "$deb" ]; then
    step "downloading $pkg"
    # apt-get download writes to the cwd; _apt cannot write to root-owned dirs: harmless warning
    (cd "$OUT/deb" && apt-get download -qq "$pkg" 2>&1 | grep -v 'unsandboxed' >&2 || true)
    deb=$(ls "$OUT"/deb/"${pkg}"_*.deb 2>/dev/null | tail -1 || true)
    [ -n "$deb" ] || { echo "mkguest: download of $pkg failed" >&2; exit 1; }
fi

step "unpacking $(basename "$deb")"
rm -rf "$OUT/kpkg"
dpkg-deb -x "$deb" "$OUT/kpkg"
cp "$OUT/kpkg/boot/vmlinuz-$kver" "$OUT/vmlinuz"
echo "$kver" > "$OUT/kernel-version"

# The uncompressed ELF vmlinux boots through the PVH entry, ~1 s faster under TCG.
rm -f "$OUT/vmlinux"
if command -v lz4 >/dev/null; then
    off=$(grep -obUaP '\x02\x21\x4c\x18' "$OUT/vmlinuz" | head -1 | cut -d: -f1 || true)
    if [ -n "$off" ]; then
        tail -c +$((off + 1)) "$OUT/vmlinuz" | lz4 -dc > "$OUT/vmlinux.tmp" 2>/dev/null || true
        if [ "$(head -c 4 "$OUT/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
            mv "$OUT/vmlinux.tmp" "$OUT/vmlinux"
            step "extracted vmlinux (PVH)"
        fi
        rm -f "$OUT/vmlinux.tmp"
    fi
fi

step "assembling initramfs"
R="$OUT/rootfs"
rm -rf "$R"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,root,lib/modules,var/run}
cp /bin/busybox "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"
done
moddir="$OUT/kpkg/lib/modules/$kver"
: > "$R/etc/modules.order"
for m in $MODULES; do
    f=$(find "$moddir" -name "$m.ko" | head -1)
    [ -n "$f" ] || { echo "mkguest: module $m not in $pkg" >&2; exit 1; }
    cp "$f" "$R/lib/modules/"
    echo "$m" >> "$R/etc/modules.order"
done

copy_with_libs() {
    local b=$1 lib
    cp -L "$b" "$R/usr/bin/"
    for lib in $(ldd "$b" | awk '/=>/ {print $3} /^\s*\// {print $1}'); do
        [ -e "$R$lib" ] && continue
        mkdir -p "$R$(dirname "$lib")"
        cp -L "$lib" "$R$lib"
    done
}
# busybox sh prefers its applets to PATH; shell functions make shipped tools win.
: > "$R/etc/agent.rc"
for b in $BINS; do
    if [ -x "$b" ]; then copy_with_libs "$b"; else step "note: $b missing, not in guest"; continue; fi
    n=$(basename "$b")
    [ -L "$R/bin/$n" ] && echo "$n() { /usr/bin/$n \"\$@\"; }" >> "$R/etc/agent.rc"
done
mkdir -p "$R/lib64"
[ -e "$R/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"

cp "$HERE/init.sh" "$R/init"
chmod 755 "$R/init"
echo "root:x:0:0:root:/root:/bin/sh" > "$R/etc/passwd"
echo "root:x:0:" > "$R/etc/group"
echo "tcpdump:x:0:0::/:/bin/sh" >> "$R/etc/passwd"
printf '127.0.0.1 localhost\n' > "$R/etc/hosts"
printf 'hosts: files\n' > "$R/etc/nsswitch.conf"

(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 > "$OUT/initrd.gz.tmp"
mv "$OUT/initrd.gz.tmp" "$OUT/initrd.gz"
rm -rf "$OUT/kpkg"
echo "$inputs" > "$OUT/stamp"
step "done: $OUT ($kver, initrd $(du -k "$OUT/initrd.gz" | cut -f1) KiB)"
