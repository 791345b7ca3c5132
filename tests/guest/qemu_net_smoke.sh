#!/bin/sh
# Sanity-run virtio_rng, virtio_console and the virtio_net* guests under
# QEMU microvm (not our VMM), to show the guests are right independently of
# our devices.
# usage: qemu_net_smoke.sh BUILD_DIR      (BUILD_DIR = TEST_GUEST_DIR)
# The net guests need root: a private network namespace with a tap (host end
# 10.0.2.1/24) is created for the run and deleted on every exit path; the
# host's own interfaces are never touched. Without root (or ip/tun) the net
# part is skipped.
# QEMU's isa-debug-exit turns guest status S into process status (S<<1)|1.
# QEMU quirks (see README.md): its virtio-mmio is legacy unless
# force-legacy=false, microvm lists virtio_mmio.device= only with acpi=off,
# QEMU 7.2 leaves num_buffers unset without MRG_RXBUF ("warn:" lines, so no
# strict=1 here), and it tolerates some hostile chains (hostile_lenient=1).
set -u
D=${1:?usage: qemu_net_smoke.sh BUILD_DIR}
fails=0
NS=tgnet$$
TMP=$(mktemp -d)
FLOOD= CHILD=
cleanup() {
    [ -n "$CHILD" ] && kill "$CHILD" 2>/dev/null
    [ -n "$FLOOD" ] && kill "$FLOOD" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
QEMU="qemu-system-x86_64 -M microvm,acpi=off -enable-kvm -cpu host,-arch-capabilities -m 128 \
  -nodefaults -no-user-config -nographic -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=1 \
  -global virtio-mmio.force-legacy=false"
MAC=52:54:00:12:34:56

# bg INPUT CMD...: runs CMD with stdin from INPUT in the background and
# waits, so a signal reaches the trap (and the cleanup) at once instead of
# after the QEMU run. Sets rc.
bg() {
    input=$1
    shift
    "$@" <"$input" &
    CHILD=$!
    wait "$CHILD"
    rc=$?
    CHILD=
}

result() { # name want_rc rc output-file pattern...
    name=$1 want=$2 rc=$3 file=$4
    shift 4
    ok=1
    [ "$rc" = "$want" ] || ok=0
    for p in "$@"; do
        grep -q -- "$p" "$file" || { ok=0; echo "    missing: $p"; }
    done
    if [ $ok = 1 ]; then
        echo "PASS $name rc=$rc"
    else
        echo "FAIL $name rc=$rc want=$want"
        sed 's/^/    /' "$file"
        fails=$((fails + 1))
    fi
}

# ---- entropy ----
bg /dev/null timeout 60 $QEMU -serial stdio -device virtio-rng-device -kernel "$D/virtio_rng-pvh.elf" \
    -append "hostile_lenient=1" >"$TMP/rng" 2>&1
result virtio_rng 1 $rc "$TMP/rng" "virtio_rng: PASS" "virtio_rng: hostile readonly: recovered" \
    "virtio_rng: hostile oob: recovered"

# ---- console: hvc on stdio (fed "ping-hvc"), the serial port into a file ----
printf 'ping-hvc\n' >"$TMP/con-in"
bg "$TMP/con-in" timeout 60 $QEMU -serial "file:$TMP/con-serial" -chardev stdio,id=hvc0 \
    -device virtio-serial-device -device virtconsole,chardev=hvc0 \
    -kernel "$D/virtio_console-pvh.elf" -append "" >"$TMP/con-hvc" 2>&1
cat "$TMP/con-hvc" "$TMP/con-serial" >"$TMP/con" 2>/dev/null
result "virtio_console (hvc)" 1 $rc "$TMP/con-hvc" "^virtio_console: hello from hvc" "^virtio_console: echo ping-hvc"
result "virtio_console (serial)" 1 $rc "$TMP/con" 'virtio_console: got line "ping-hvc"' "virtio_console: PASS"

# ---- net: a tap in a private network namespace ----
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! ip netns add "$NS" 2>/dev/null; then
    echo "SKIP virtio_net*: needs root and ip netns"
    echo "qemu_net_smoke: $fails failure(s)"
    [ "$fails" = 0 ]
    exit
fi
IN="ip netns exec $NS"
$IN ip link set lo up
$IN ip tuntap add tap0 mode tap || { echo "FAIL: cannot create a tap"; exit 1; }
$IN ip addr add 10.0.2.1/24 dev tap0
$IN ip link set tap0 up
NET="-serial stdio -netdev tap,id=n0,ifname=tap0,script=no,downscript=no"

net() { # name want_rc device-opts append patterns...
    name=$1 want=$2 dopts=$3 append=$4
    shift 4
    bg /dev/null $IN timeout 180 $QEMU $NET -device "virtio-net-device,netdev=n0,mac=$MAC$dopts" \
        -kernel "$D/${name%% *}-pvh.elf" -append "$append" >"$TMP/net" 2>&1
    result "$name" "$want" $rc "$TMP/net" "$@"
}

net "virtio_net" 1 "" "net_count=3" "virtio_net: arp reply from" "virtio_net: ping reply" "virtio_net: PASS"
net "virtio_net (merged rx buffers)" 1 "" "rx_buf=128 ping_size=1472 net_count=2" \
    "ping reply seq=2 .*(merged rx buffers)" "virtio_net: PASS"
net "virtio_net (mrg_rxbuf=off)" 1 ",mrg_rxbuf=off" "ping_size=1472" "MRG_RXBUF not negotiated" "virtio_net: PASS"

# Starved receive queue while the namespace floods the tap with UDP.
$IN ip neigh add 10.0.2.15 lladdr $MAC dev tap0 nud permanent
$IN python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + 120
while time.time() < end:
    try:
        s.sendto(b"x" * 1000, ("10.0.2.15", 9))
    except OSError:
        time.sleep(0.001)
' &
FLOOD=$!
net "virtio_net_norx" 1 "" "norx_ticks=5 expect_frames=20" "virtio_net_norx: ready" "tick 5/5" \
    "virtio_net_norx: traffic resumed" "virtio_net_norx: PASS"
kill "$FLOOD" 2>/dev/null
wait "$FLOOD" 2>/dev/null
FLOOD=
$IN ip neigh del 10.0.2.15 dev tap0

# Every hostile case; QEMU flags these with NEEDS_RESET, accepts the rest.
net "virtio_net_hostile" 1 "" "case=all tap=1 hostile_lenient=1" "0 of 16 cases failed" \
    "virtio_net_hostile: still alive" "tx_loop: needs_reset" "tx_next_oob: needs_reset" \
    "tx_head_oob: needs_reset" "tx_short: needs_reset" "tx_zero_len: needs_reset" "rx_loop: needs_reset" \
    "rx_next_oob: needs_reset" "rx_head_oob: needs_reset" "tx_indirect: works without reset"
# One strict run: a hard case needs NEEDS_RESET without hostile_lenient.
net "virtio_net_hostile (strict)" 1 "" "case=rx_loop tap=1" "rx_loop: needs_reset" \
    "virtio_net_hostile: recovered" "virtio_net_hostile: still alive"

echo "qemu_net_smoke: $fails failure(s)"
[ "$fails" = 0 ]
