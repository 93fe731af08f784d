#!/bin/bash
# The lab: install deps, build, build the lab guest, start vswitchd (--db none) in a
# temp run dir, attach two QEMU guests over vhost-user, ping and iperf3 between them,
# show `vswitchctl show` and `port-stats`, clean up. Run as root: sudo scripts/lab.sh
# Options are passed to scripts/lab.py (--keep: stay up until Ctrl-C; --iperf-seconds N).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "lab.sh: run as root (sudo $0)" >&2; exit 1; }
scripts/deps.sh
echo "[lab] build"
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null || { ninja -C build | tail -30; exit 1; }
vmm/guest/mkguest.sh
exec /usr/bin/python3 scripts/lab.py "$@"
