#!/bin/bash
# Install everything vswitch needs to build, test and benchmark on Debian 12.
# Idempotent: when every package is already installed it only checks and exits.
# Usage: scripts/deps.sh   (root)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

BUILD_PKGS="build-essential meson ninja-build pkg-config libevent-dev libjansson-dev
 liburcu-dev libcmocka-dev libnl-3-dev libnl-route-3-dev libbpf-dev libxdp-dev libpcap-dev
 libdpdk-dev libcap-ng-dev libseccomp-dev"
RUN_PKGS="dpdk dpdk-dev util-linux qemu-system-x86 busybox-static iperf3 iputils-ping lz4 iptables tcpdump tshark python3-scapy iproute2
 socat jq cpio kmod clang etcd-server curl"
# The nested-KVM host (tests/e2e/nested.py, bench/boot.py): QEMU TCG outer guest; inside
# it QEMU as an inner VMM needs its firmware (SeaBIOS for -M pc, qboot/linuxboot for
# -M microvm and -kernel); the KVM modules come from the cloud kernel .deb that
# vmm/guest/mkguest.sh downloads (apt-get download), unpacked with dpkg-deb.
RUN_PKGS="$RUN_PKGS seabios qemu-system-data"
# Open vSwitch with DPDK: an interop peer (tests/e2e/test_vmm_interop.py) and the
# benchmarks' reference. Installing it starts no daemon the tests rely on; they run
# their own ovsdb-server/ovs-vswitchd.
RUN_PKGS="$RUN_PKGS openvswitch-switch-dpdk"

step() { printf '[deps] %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: must run as root (try: sudo $0)" >&2
    exit 1
fi

missing() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
            printf '%s\n' "$p"
    done
}

# shellcheck disable=SC2086
todo=$(missing $BUILD_PKGS $RUN_PKGS | tr '\n' ' ')
if [ -z "${todo// /}" ]; then
    step "all packages present"
else
    step "apt-get update"
    apt-get update -qq >/dev/null
    step "installing: $todo"
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $todo >/dev/null
    left=$(missing $todo | tr '\n' ' ')
    if [ -n "${left// /}" ]; then
        echo "deps.sh: still missing after install: $left" >&2
        exit 1
    fi
    step "installed"
fi

# apt-get download (used by the guest builder) needs package lists to exist.
if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
    step "apt-get update (no package lists yet)"
    apt-get update -qq >/dev/null
fi
step "done"
