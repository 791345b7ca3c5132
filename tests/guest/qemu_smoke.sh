#!/bin/sh
# Sanity-run the PVH test guests under QEMU/KVM (not our VMM).
# usage: qemu_smoke.sh BUILD_DIR      (BUILD_DIR = TEST_GUEST_DIR)
# QEMU's isa-debug-exit turns guest status S into process status (S<<1)|1;
# a triple fault or i8042 reset with -no-reboot exits 0.
# Notes: microvm has no i8042 and reports an unsorted memmap with a bogus
# zero-size entry, so i8042_reset and boot_checks run on "-M pc".  int3 needs
# the VMM's #BP injection on PVM hosts (KVM's emulator cannot run int3), so
# its result is informational only.
set -u
D=${1:?usage: qemu_smoke.sh BUILD_DIR}
fails=0
QEMU="qemu-system-x86_64 -enable-kvm -cpu host,-arch-capabilities -m 128 -nographic -no-reboot \
  -device isa-debug-exit,iobase=0xf4,iosize=1"

run() { # want_status machine guest append expected-output [stdin-text [timeout]]
    want=$1 machine=$2 guest=$3 append=$4 pattern=$5 input=${6:-} secs=${7:-20}
    extra=; [ "$machine" = pc ] && extra="-net none -vga none"  # skip slow option ROMs
    out=$(printf "$input" | timeout "$secs" $QEMU -M "$machine" $extra -kernel "$D/$guest-pvh.elf" -append "$append" 2>&1)
    rc=$?
    if [ "$rc" = "$want" ] && printf '%s\n' "$out" | grep -q -- "$pattern"; then
        echo "PASS $guest ($machine) rc=$rc"
    else
        echo "FAIL $guest ($machine) rc=$rc want=$want"
        echo "$out" | sed 's/^/    /'
        fails=$((fails + 1))
    fi
}

printf 'ABCDinitrd-payload' > "$D/smoke-initrd.img"
run 1 microvm hello "guest_test=hello" "Hello from test guest (pvh)"
run 1 pc boot_checks "guest_test=boot_checks expect_mem_mib=128" "boot_checks: PASS"
QEMU="$QEMU -initrd $D/smoke-initrd.img" run 1 pc boot_checks \
    "guest_test=boot_checks expect_mem_mib=128 expect_initrd_size=18 expect_initrd_magic=ABCD" "boot_checks: PASS"
run 3 microvm boot_checks "guest_test=boot_checks expect_mem_mib=64" "FAIL: memmap: usable RAM"
run 85 microvm exit_code "exit=42" "exiting with status 42"
run 5 microvm exit_code "" "FAIL: exit_code"
run 0 microvm triple_fault "" "triple_fault:"
run 0 pc i8042_reset "" "i8042_reset:"
run 1 microvm serial_echo "" "echo: hello echo" 'hello echo\n'
run 124 microvm spin "" "spinning" "" 3
# virtio-blk guests. microvm only appends virtio_mmio.device= entries to the
# cmdline with acpi=off, and QEMU's virtio-mmio is legacy (Version 1) unless
# force-legacy=false. QEMU tolerates some hostile cases (addr_oob,
# addr_straddle, indirect_not_negotiated, indirect_with_next, unknown_flags,
# bad_queue_size), so only the ones it flags with NEEDS_RESET are run here.
python3 "$(dirname "$0")/make_blk_image.py" "$D/smoke-blk.img" 2048
BLK="-global virtio-mmio.force-legacy=false -drive id=d0,file=$D/smoke-blk.img,format=raw,if=none \
  -device virtio-blk-device,drive=d0,serial=smokedisk"
QEMU="$QEMU $BLK" run 1 microvm,acpi=off virtio_blk "expect_sectors=2048 expect_id=smokedisk" "virtio_blk: PASS"
QEMU="$QEMU $BLK" run 124 microvm,acpi=off virtio_blk_flush "" "virtio_blk_flush: flushed" "" 3
for c in loop loop_self next_oob head_oob len_overflow indirect_nested indirect_misaligned write_before_read avail_jump; do
    QEMU="$QEMU $BLK" run 1 microvm,acpi=off virtio_blk_hostile "case=$c recover=1" "virtio_blk_hostile: recovered"
done
# SMP guests on 4 vCPUs. microvm's firmware (qboot) puts an MP table at
# 0x9fc00 whose header entry count stays 0 (hence mptable_ignore_count=1;
# without it smp reports exactly that), ACPI (RSDP rev 2, XSDT -> FACP, APIC)
# only without acpi=off. QEMU turns guest status 0 into 1, 1 into 3.
SMP="-smp 4"
QEMU="$QEMU $SMP" run 1 microvm smp "cpus=4 mptable_ignore_count=1" "smp: madt ok (4 local apics)" "" 60
QEMU="$QEMU $SMP" run 3 microvm smp "cpus=4" "FAIL: mptable: header entry count is 0" "" 60
QEMU="$QEMU $SMP" run 1 microvm,acpi=off smp "cpus=4 acpi=0 mptable_ignore_count=1 exit_from_last=1" \
    "smp: cpu 3 (last online) writes exit status 0" "" 60
QEMU="$QEMU $SMP" run 1 microvm pause_counters "cpus=4 ticks=10" "pause_counters: PASS" "" 60
out=$(timeout 5 $QEMU -M microvm -kernel "$D/int3-pvh.elf" 2>&1)
echo "INFO int3 (microvm) rc=$? $(echo "$out" | grep -m1 'int3: PASS\|int3: FAIL\|emulation failure')"
echo "qemu_smoke: $fails failure(s)"
[ "$fails" = 0 ]
