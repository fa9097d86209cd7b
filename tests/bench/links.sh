#!/usr/bin/env bash
# Link kinds compared in one run: the same host/card pair over the loopback link (memfd + eventfds via
# the ivshmem socket) and over the pci link (a /dev/shm window file with polled doorbells); then a QEMU
# guest (TCG, stock virtio_net) on vop's vhost-user back-end against the same guest on QEMU's own
# userspace virtio-net + TAP backend (the baseline for that path: there is no vhost-net here). Not a test:
# prints one name=value line per figure. Needs root, iperf3, ping, qemu-system-x86, python3.
#   tests/bench/links.sh [SECONDS_PER_IPERF_RUN]
set -euo pipefail
cd "$(dirname "$0")/../.."
T=${1:-10}
[[ $(id -u) -eq 0 ]] || { echo "links.sh: needs root" >&2; exit 1; }
./vop --help >/dev/null
DLL=appliance/Vop.Appliance/bin/Release/net10.0/vop.dll
ID=vopl$$
DIR=$(mktemp -d /tmp/vop-links-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    ip netns del $ID-h 2>/dev/null || true; ip netns del $ID-c 2>/dev/null || true; ip netns del $ID-v 2>/dev/null || true
    rm -rf "$DIR" "/dev/shm/$ID-window"
}
trap cleanup EXIT

# run KIND -> prints tcp and rtt figures for that link kind
run() {
    local kind=$1 link
    ip netns add $ID-h; ip netns add $ID-c; ip -n $ID-h link set lo up; ip -n $ID-c link set lo up
    if [[ $kind == loopback ]]; then link="\"socket\": \"$DIR/link.sock\""; else link="\"path\": \"/dev/shm/$ID-window\", \"windowSize\": \"64M\""; fi
    cat >"$DIR/host.json" <<JSON
{ "metrics": { "listen": "off" }, "links": [ { "name": "card0", "kind": "$kind", "role": "device", $link, "runDir": "$DIR/run", $( [[ $kind == loopback ]] && echo '"windowSize": "64M",' )
  "devices": [ { "type": "net", "tap": "vlh", "mac": "52:54:00:be:00:02" } ] } ] }
JSON
    cat >"$DIR/card.json" <<JSON
{ "metrics": { "listen": "off" }, "links": [ { "name": "host", "kind": "$kind", "role": "driver", $link, "runDir": "$DIR/run",
  "devices": [ { "type": "net", "tap": "vlc" } ] } ] }
JSON
    ip netns exec $ID-h dotnet $DLL run --config "$DIR/host.json" >"$DIR/host-$kind.log" 2>&1 & local d=$!; PIDS+=($d)
    ip netns exec $ID-c dotnet $DLL run --config "$DIR/card.json" >"$DIR/card-$kind.log" 2>&1 & local r=$!; PIDS+=($r)
    for i in $(seq 100); do ip -n $ID-c link show vlc 2>/dev/null | grep -q LOWER_UP && break; sleep 0.2; done
    ip -n $ID-h addr add 10.182.0.1/24 dev vlh; ip -n $ID-c addr add 10.182.0.2/24 dev vlc
    ip netns exec $ID-h ping -c 1 -W 2 10.182.0.2 >/dev/null
    ip netns exec $ID-c iperf3 -s -1 -B 10.182.0.2 >/dev/null 2>&1 & local s=$!
    sleep 0.5
    local gbps; gbps=$(ip netns exec $ID-h iperf3 -c 10.182.0.2 -t "$T" -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
    wait $s 2>/dev/null || true
    local p50; p50=$(ip netns exec $ID-h ping -c 200 -i 0.01 10.182.0.2 | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -g | awk '{a[NR]=$1} END {printf "%.0f", a[int(NR*0.5)]*1000}')
    echo "${kind}_tcp_host_to_card_gbps=$gbps"
    echo "${kind}_rtt_p50_us=$p50"
    kill $d $r; wait $d $r 2>/dev/null || true
    ip netns del $ID-h; ip netns del $ID-c
}

# A guest's serial console on a unix socket: type a command, wait for its end marker, print its output.
guest() {
    python3 - "$DIR/serial.sock" "$1" "${2:-120}" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(0.2)
mark = "__BENCH_%d_rc=" % time.time_ns()
s.sendall((sys.argv[2] + "; echo " + mark + "$?\n").encode())
out, end = b"", time.time() + float(sys.argv[3])
while time.time() < end and (mark + "0").encode() not in out and (mark + "1").encode() not in out:
    try: out += s.recv(65536)
    except socket.timeout: pass
print(out.decode(errors="replace"))
PY
}

# traffic NAME -> TCP both ways (32 MiB) and RTT p50 between the TAP in $ID-v (10.183.0.1) and the guest (.2)
traffic() {
    guest "nc -l -p 5202 > /dev/null & sleep 0.3" 10 >/dev/null
    local to; to=$(ip netns exec $ID-v dotnet $DLL _tcp-source --connect 10.183.0.2:5202 --bytes 33554432 | sed -n 's/^gbps=//p')
    ip netns exec $ID-v dotnet $DLL _tcp-sink --port 5201 >"$DIR/sink" 2>&1 & local k=$!
    sleep 1
    guest "dd if=/dev/zero of=/tmp/f bs=64k count=512 2>/dev/null" 60 >/dev/null
    guest "nc 10.183.0.1 5201 < /tmp/f" 120 >/dev/null
    wait $k || true
    local from; from=$(sed -n 's/^gbps=//p' "$DIR/sink")
    local p50; p50=$(ip netns exec $ID-v ping -c 100 -i 0.01 10.183.0.2 | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -g | awk '{a[NR]=$1} END {printf "%.0f", a[int(NR*0.5)]*1000}')
    echo "${1}_tcp_host_to_guest_mbps=$(python3 -c "print(round(float('${to:-0}')*1000, 1))")"
    echo "${1}_tcp_guest_to_host_mbps=$(python3 -c "print(round(float('${from:-0}')*1000, 1))")"
    echo "${1}_rtt_p50_us=$p50"
}

# run_vm vhost-user|qemu-tap -> TCP both ways (32 MiB) and RTT between the guest and a TAP in a namespace
run_vm() {
    local mode=$1 net
    ip netns add $ID-v; ip -n $ID-v link set lo up
    if [[ $mode == vhost-user ]]; then
        cat >"$DIR/vm.json" <<JSON
{ "metrics": { "listen": "off" }, "links": [ { "name": "vm0", "kind": "vhost-user", "socket": "$DIR/vhost.sock", "runDir": "$DIR/run",
  "devices": [ { "type": "net", "tap": "vlv" } ] } ] }
JSON
        ip netns exec $ID-v dotnet $DLL run --config "$DIR/vm.json" >"$DIR/vm.log" 2>&1 & PIDS+=($!)
        for i in $(seq 100); do [[ -S $DIR/vhost.sock ]] && break; sleep 0.1; done
        net=(-chardev "socket,id=vh,path=$DIR/vhost.sock" -netdev vhost-user,id=n0,chardev=vh)
    else
        net=(-netdev tap,id=n0,ifname=vlv,script=no,downscript=no)
    fi
    rm -f "$DIR/serial.sock"
    ip netns exec $ID-v qemu-system-x86_64 -accel tcg -cpu max -m 256 -display none -monitor none -no-reboot \
        -kernel "$GUEST/vmlinux" -initrd "$GUEST/initrd.gz" -append "console=ttyS0 quiet panic=-1 vop_ip=10.183.0.2/24" \
        -object memory-backend-memfd,id=mem,size=256M,share=on -machine memory-backend=mem "${net[@]}" \
        -device virtio-net-pci,netdev=n0,vectors=0 \
        -chardev "socket,id=s0,path=$DIR/serial.sock,server=on,wait=off" -serial chardev:s0 >"$DIR/qemu-$mode.log" 2>&1 & local q=$!; PIDS+=($q)
    for i in $(seq 300); do ip -n $ID-v link show vlv 2>/dev/null | grep -q LOWER_UP && break; sleep 0.1; done
    ip -n $ID-v addr add 10.183.0.1/24 dev vlv; ip -n $ID-v link set vlv up
    for i in $(seq 100); do ip netns exec $ID-v ping -c 1 -W 1 10.183.0.2 >/dev/null 2>&1 && break; sleep 0.3; done
    traffic "vm_${mode//-/_}"
    kill $q; wait $q 2>/dev/null || true
    [[ $mode == vhost-user ]] && { kill "${PIDS[-2]}"; wait "${PIDS[-2]}" 2>/dev/null || true; }
    ip netns del $ID-v
}

# run_card_vm poll|ivshmem -> vop itself inside the guest (from the host's root over 9p) on the ivshmem BAR:
# polled over ivshmem-plain against a host pci link, or BAR0 doorbells + MSI-X (VFIO) against the host's
# loopback link. Same traffic as run_vm, between the host's TAP and the guest vop's TAP.
run_card_vm() {
    local mode=$1 bar machine=() host card
    ip netns add $ID-v; ip -n $ID-v link set lo up
    card="\"kind\": \"pci\", \"role\": \"driver\", \"path\": \"/sys/bus/pci/devices/0000:00:05.0/resource2\", \"windowSize\": \"64M\", \"doorbell\": \"$mode\""
    if [[ $mode == poll ]]; then
        truncate -s 64M /dev/shm/$ID-window
        host="\"kind\": \"pci\", \"path\": \"/dev/shm/$ID-window\""
        bar=(-object "memory-backend-file,id=ivm,size=64M,share=on,mem-path=/dev/shm/$ID-window" -device ivshmem-plain,memdev=ivm,addr=0x5)
    else
        host="\"kind\": \"loopback\", \"socket\": \"$DIR/ivshmem.sock\""
        bar=(-chardev "socket,id=ivs,path=$DIR/ivshmem.sock" -device ivshmem-doorbell,chardev=ivs,vectors=16,addr=0x5)
        machine=(-machine q35 -device intel-iommu,intremap=on)
    fi
    cat >"$DIR/hostvm.json" <<JSON
{ "metrics": { "listen": "off" }, "links": [ { "name": "card0", $host, "role": "device", "windowSize": "64M", "runDir": "$DIR/run",
  "devices": [ { "type": "net", "tap": "vlv", "mac": "52:54:00:be:00:04" } ] } ] }
JSON
    cat >"$DIR/cardvm.json" <<JSON
{ "metrics": { "listen": "off" }, "links": [ { "name": "host", $card, "runDir": "/run/vop", "devices": [ { "type": "net", "tap": "vlg" } ] } ] }
JSON
    ip netns exec $ID-v dotnet $DLL run --config "$DIR/hostvm.json" >"$DIR/hostvm-$mode.log" 2>&1 & local h=$!; PIDS+=($h)
    sleep 2
    rm -f "$DIR/serial.sock"
    qemu-system-x86_64 -accel tcg -cpu max -m 256 -display none -monitor none -no-reboot -nic none "${machine[@]}" \
        -kernel "$GUEST/vmlinux" -initrd "$GUEST/initrd.gz" -append "console=ttyS0 quiet panic=-1 $([[ $mode == ivshmem ]] && echo intel_iommu=on)" \
        -object memory-backend-memfd,id=mem,size=256M,share=on -machine memory-backend=mem "${bar[@]}" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
        -chardev "socket,id=s0,path=$DIR/serial.sock,server=on,wait=off" -serial chardev:s0 >"$DIR/qemu-card-$mode.log" 2>&1 & local q=$!; PIDS+=($q)
    for i in $(seq 100); do [[ -S $DIR/serial.sock ]] && break; sleep 0.1; done
    sleep 6
    local sys=/sys/bus/pci/devices/0000:00:05.0
    if [[ $mode == poll ]]; then guest "echo 1 > $sys/enable" 10 >/dev/null
    else guest "echo vfio-pci > $sys/driver_override; echo 0000:00:05.0 > /sys/bus/pci/drivers_probe" 10 >/dev/null; fi
    guest "chroot /mnt /usr/bin/env -i PATH=/usr/bin:/bin HOME=/run/home TMPDIR=/run/tmp DOTNET_CLI_HOME=/run/home DOTNET_NOLOGO=1 $(readlink -f "$(command -v dotnet)") $PWD/$DLL run --config $DIR/cardvm.json > /mnt/run/vop.log 2>&1 & true" 10 >/dev/null
    for i in $(seq 60); do guest "cat /sys/class/net/vlg/carrier 2>/dev/null" 5 | grep -q '^1' && break; sleep 1; done
    guest "ip addr add 10.183.0.2/24 dev vlg" 10 >/dev/null
    ip -n $ID-v addr add 10.183.0.1/24 dev vlv
    for i in $(seq 100); do ip netns exec $ID-v ping -c 1 -W 1 10.183.0.2 >/dev/null 2>&1 && break; sleep 0.3; done
    traffic "card_vm_$mode"
    kill $q; wait $q 2>/dev/null || true
    kill $h; wait $h 2>/dev/null || true
    ip netns del $ID-v
}

run loopback
run pci
GUEST=${VOP_GUEST_DIR:-/var/cache/vop-guest}
bash tests/tools/guest/build-guest.sh "$GUEST"
run_vm qemu-tap
run_vm vhost-user
run_card_vm poll
run_card_vm ivshmem
echo "cpus=$(nproc)"
