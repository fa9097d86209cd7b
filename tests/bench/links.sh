#!/usr/bin/env bash
# Link kinds compared in one run: the same host/card pair over the loopback link (memfd + eventfds via
# the ivshmem socket) and over the pci link (a /dev/shm window file with polled doorbells). Not a test:
# prints one name=value line per figure. Needs root, iperf3, ping.
#   tests/bench/links.sh [SECONDS_PER_IPERF_RUN]
set -euo pipefail
cd "$(dirname "$0")/../.."
T=${1:-10}
[[ $(id -u) -eq 0 ]] || { echo "links.sh: needs root" >&2; exit 1; }
./vop --help >/dev/null
DLL=appliance/Vop/bin/Release/net10.0/vop.dll
ID=vopl$$
DIR=$(mktemp -d /tmp/vop-links-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    ip netns del $ID-h 2>/dev/null || true; ip netns del $ID-c 2>/dev/null || true
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

run loopback
run pci
echo "cpus=$(nproc)"
