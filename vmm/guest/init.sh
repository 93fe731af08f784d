#!/bin/sh
# /init of the lab guest (busybox). Kernel command line:
#   vs.ip=CIDR  vs.mac=MAC  vs.vlan=N  vs.gw=IP  vs.dhcp=1  vs.mtu=N  vs.hostname=NAME
#   vs.run=BASE64   a sh command, run once networking is set up; its output goes to the
#                   console, then "@@VS-RUN-END <rc>@@"
#   vs.poweroff=1   power off after vs.run (else: serve commands as below)
#   vs.nonet=1      no NIC expected: do not wait for eth0 (e.g. the nested-KVM host)
# The first line /init writes to the console is "@@VS-INIT@@" (boot-time marker).
# ttyS0 is the console (log). ttyS1 carries the command protocol:
#   guest -> host  "@@VS-READY@@"                        once, when networking is set up
#   host  -> guest "RUN <id> <timeout-s> <base64 of a sh command>"
#   guest -> host  "@@VS-OUT <id>@@" <stdout+stderr> "@@VS-END <id> <rc>@@"
# A command that outlives its timeout is killed (rc 137). stdin is /dev/null.
echo "@@VS-INIT@@"
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
dmesg -n 1
. /etc/agent.rc
log() { echo "[init $(cut -d' ' -f1 /proc/uptime)] $*"; }

for w in $(cat /proc/cmdline); do
    case "$w" in
    vs.ip=*) IP=${w#vs.ip=} ;;
    vs.mac=*) MAC=${w#vs.mac=} ;;
    vs.vlan=*) VLAN=${w#vs.vlan=} ;;
    vs.gw=*) GW=${w#vs.gw=} ;;
    vs.dhcp=*) DHCP=${w#vs.dhcp=} ;;
    vs.mtu=*) MTU=${w#vs.mtu=} ;;
    vs.hostname=*) hostname "${w#vs.hostname=}" ;;
    vs.run=*) RUN=${w#vs.run=} ;;
    vs.poweroff=*) POWEROFF=${w#vs.poweroff=} ;;
    vs.nonet=*) NONET=${w#vs.nonet=} ;;
    esac
done

for m in $(cat /etc/modules.order); do
    case "$m" in llc|stp|garp|mrp|8021q) [ -n "$VLAN" ] || continue ;; esac
    insmod "/lib/modules/$m.ko" || log "insmod $m failed"
done
log "modules loaded"
ip link set lo up
i=0
[ "$NONET" = 1 ] && i=100
while [ ! -d /sys/class/net/eth0 ] && [ $i -lt 100 ]; do usleep 50000; i=$((i + 1)); done
DEV=eth0
if [ -d /sys/class/net/eth0 ]; then
    [ -n "$MAC" ] && ip link set eth0 address "$MAC"
    [ -n "$MTU" ] && ip link set eth0 mtu "$MTU"
    ip link set eth0 up
    if [ -n "$VLAN" ]; then
        DEV=eth0.$VLAN
        ip link add link eth0 name "$DEV" type vlan id "$VLAN" || vconfig add eth0 "$VLAN"
        ip link set "$DEV" up
    fi
    [ -n "$IP" ] && ip addr add "$IP" dev "$DEV"
    [ -n "$GW" ] && ip route add default via "$GW"
    if [ "$DHCP" = 1 ]; then
        cat > /etc/udhcpc.sh <<'EOS'
#!/bin/sh
case "$1" in
bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}"
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done ;;
deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
EOS
        chmod +x /etc/udhcpc.sh
        udhcpc -i "$DEV" -s /etc/udhcpc.sh -t 10 -T 1 -A 1 -b -S
    fi
    log "net: $DEV ip=${IP:-none} vlan=${VLAN:-none} dhcp=${DHCP:-0} mac=$(cat /sys/class/net/eth0/address)"
else
    log "net: no eth0"
fi

if [ -n "$RUN" ]; then
    echo "$RUN" | base64 -d > /tmp/run.sh 2>/dev/null || log "vs.run: bad base64"
    log "vs.run: $(head -c 200 /tmp/run.sh | tr '\n' ';')"
    sh -c '. /etc/agent.rc; . /tmp/run.sh' </dev/null 2>&1
    echo "@@VS-RUN-END $?@@"
fi
if [ "$POWEROFF" = 1 ]; then
    log "powering off"
    poweroff -f
fi

# The command agent. Restarted if it ever dies; init itself never exits.
agent() {
    stty -F /dev/ttyS1 raw -echo -opost 115200 2>/dev/null
    exec 3<>/dev/ttyS1
    printf '\n@@VS-READY@@\n' >&3
    while IFS=' ' read -r verb id tmo b64 <&3; do
        [ "$verb" = RUN ] || continue
        echo "$b64" | base64 -d > /tmp/cmd.sh 2>/dev/null
        timeout -s KILL "$tmo" sh -c '. /etc/agent.rc; . /tmp/cmd.sh' </dev/null >/tmp/cmd.out 2>&1
        rc=$?
        printf '@@VS-OUT %s@@\n' "$id" >&3
        cat /tmp/cmd.out >&3
        printf '\n@@VS-END %s %s@@\n' "$id" "$rc" >&3
    done
}
log "ready"
while true; do (agent); sleep 1; done
