#!/usr/bin/env bash
# Network benchmark: vop (device side in one namespace, driver side in another, loopback link) against a
# kernel veth pair between two namespaces, measured in the same run. Not a test: prints one name=value
# line per figure and rewrites the net.sh section of docs/benchmarks.md. Needs root, iperf3, ping.
#   tests/bench/net.sh [SECONDS_PER_IPERF_RUN]
set -euo pipefail
cd "$(dirname "$0")/../.."
T=${1:-10}
[[ $(id -u) -eq 0 ]] || { echo "net.sh: needs root" >&2; exit 1; }
for c in iperf3 ping ip; do command -v $c >/dev/null || { echo "net.sh: $c is missing" >&2; exit 1; }; done
./vop --help >/dev/null   # build if needed

ID=vopb$$
DIR=$(mktemp -d /tmp/vop-net-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for ns in $ID-h $ID-c $ID-va $ID-vb; do ip netns del $ns 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT
for ns in $ID-h $ID-c $ID-va $ID-vb; do ip netns add $ns; ip -n $ns link set lo up; done

# Kernel baseline: veth between two namespaces.
ip link add vba netns $ID-va type veth peer name vbb netns $ID-vb
ip -n $ID-va addr add 10.181.0.1/24 dev vba; ip -n $ID-va link set vba up
ip -n $ID-vb addr add 10.181.0.2/24 dev vbb; ip -n $ID-vb link set vbb up

# vop: device side in $ID-h (TAP vbh), driver side in $ID-c (TAP vbc).
cat >"$DIR/host.json" <<JSON
{ "links": [ { "name": "card0", "role": "device", "socket": "$DIR/link.sock", "windowSize": "64M",
  "devices": [ { "type": "net", "tap": "vbh", "mac": "52:54:00:be:00:01", "mtu": 1500 } ] } ] }
JSON
cat >"$DIR/card.json" <<JSON
{ "links": [ { "name": "host", "role": "driver", "socket": "$DIR/link.sock", "devices": [ { "type": "net", "tap": "vbc" } ] } ] }
JSON
DLL=appliance/Vop/bin/Release/net10.0/vop.dll
ip netns exec $ID-h dotnet $DLL run --config "$DIR/host.json" >"$DIR/host.log" 2>&1 & DEV=$!; PIDS+=($DEV)
ip netns exec $ID-c dotnet $DLL run --config "$DIR/card.json" >"$DIR/card.log" 2>&1 & DRV=$!; PIDS+=($DRV)
for i in $(seq 100); do
    ip -n $ID-c link show vbc 2>/dev/null | grep -q LOWER_UP && ip -n $ID-h link show vbh 2>/dev/null | grep -q LOWER_UP && break
    sleep 0.2
done
ip -n $ID-h addr add 10.180.0.1/24 dev vbh
ip -n $ID-c addr add 10.180.0.2/24 dev vbc
ping_ok() { ip netns exec "$1" ping -c 1 -W 2 "$2" >/dev/null; }
ping_ok $ID-h 10.180.0.2 || { echo "net.sh: vop link did not come up" >&2; cat "$DIR"/*.log >&2; exit 1; }
ping_ok $ID-va 10.181.0.2

# iperf3 TCP single stream: FROM_NS TO_NS TO_IP [extra args] -> Gbit/s at the receiver
tcp() {
    ip netns exec "$2" iperf3 -s -1 -B "$3" >/dev/null 2>&1 & local s=$!
    sleep 0.5
    local out; out=$(ip netns exec "$1" iperf3 -c "$3" -t "$T" -J "${@:4}")
    wait $s 2>/dev/null || true
    echo "$out" | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'
}
# iperf3 UDP, 64-byte payloads, unlimited rate: received packets per second
udp() {
    ip netns exec "$2" iperf3 -s -1 -B "$3" >/dev/null 2>&1 & local s=$!
    sleep 0.5
    local out; out=$(ip netns exec "$1" iperf3 -c "$3" -u -l 64 -b 0 -t 5 -J)
    wait $s 2>/dev/null || true
    echo "$out" | python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]["sum"]; print("%.0f" % ((e["packets"]-e["lost_packets"])/e["seconds"]))'
}
# ping RTT percentiles in microseconds: NS IP INTERVAL COUNT -> "p50 p99"
rtt() {
    ip netns exec "$1" ping -c "$4" -i "$3" "$2" | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' |
        sort -g | awk '{a[NR]=$1} END {printf "%.0f %.0f\n", a[int(NR*0.5)]*1000, a[int(NR*0.99)]*1000}'
}
cpu_ticks() { awk '{print $14+$15}' /proc/$1/stat; }
rss_anon() { awk '/RssAnon/ {print $2}' /proc/$1/status; }

ratio() { python3 -c "print('%.2f' % ($1/$2 if $2 else 0))"; }

VETH_H2C=$(tcp $ID-va $ID-vb 10.181.0.2)
VETH_C2H=$(tcp $ID-vb $ID-va 10.181.0.1)
# RssAnon of both daemons sampled half-way through the first vop run.
( sleep $((T / 2 + 1)); echo "$(rss_anon $DEV) $(rss_anon $DRV)" >"$DIR/rss" ) & SAMPLER=$!
VOP_H2C=$(tcp $ID-h $ID-c 10.180.0.2)
wait $SAMPLER; read -r RSS_DEV RSS_DRV <"$DIR/rss"
VOP_C2H=$(tcp $ID-c $ID-h 10.180.0.1)
# The same host-to-card run while both daemons' /metrics are scraped every second.
scrape() { ip netns exec "$1" bash -c 'while true; do exec 3<>/dev/tcp/127.0.0.1/9465 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3 >/dev/null; exec 3<&-; sleep 1; done' & }
scrape $ID-h; S1=$!; scrape $ID-c; S2=$!
VOP_H2C_SCRAPED=$(tcp $ID-h $ID-c 10.180.0.2)
kill $S1 $S2 2>/dev/null; wait $S1 $S2 2>/dev/null || true
read -r VETH_P50 VETH_P99 < <(rtt $ID-va 10.181.0.2 0.01 300)
read -r VOP_P50 VOP_P99 < <(rtt $ID-h 10.180.0.2 0.01 300)
read -r VETH_BB50 VETH_BB99 < <(rtt $ID-va 10.181.0.2 0.0002 2000)
read -r VOP_BB50 VOP_BB99 < <(rtt $ID-h 10.180.0.2 0.0002 2000)
VETH_UDP=$(udp $ID-va $ID-vb 10.181.0.2)
VOP_UDP=$(udp $ID-h $ID-c 10.180.0.2)
sleep 2
a1=$(cpu_ticks $DEV); a2=$(cpu_ticks $DRV); sleep 10; b1=$(cpu_ticks $DEV); b2=$(cpu_ticks $DRV)
HZ=$(getconf CLK_TCK)
IDLE_DEV=$(python3 -c "print('%.2f' % (($b1-$a1)*100/$HZ/10))")
IDLE_DRV=$(python3 -c "print('%.2f' % (($b2-$a2)*100/$HZ/10))")

cat >"$DIR/figures" <<FIG
tcp_host_to_card_gbps=$VOP_H2C
tcp_card_to_host_gbps=$VOP_C2H
veth_tcp_a_to_b_gbps=$VETH_H2C
veth_tcp_b_to_a_gbps=$VETH_C2H
tcp_host_to_card_vs_veth=$(ratio $VOP_H2C $VETH_H2C)
tcp_host_to_card_scraped_gbps=$VOP_H2C_SCRAPED
tcp_scraped_vs_unscraped=$(ratio $VOP_H2C_SCRAPED $VOP_H2C)
tcp_card_to_host_vs_veth=$(ratio $VOP_C2H $VETH_C2H)
rtt_p50_us=$VOP_P50
rtt_p99_us=$VOP_P99
veth_rtt_p50_us=$VETH_P50
veth_rtt_p99_us=$VETH_P99
rtt_p50_over_veth_us=$((VOP_P50 - VETH_P50))
rtt_back_to_back_p50_us=$VOP_BB50
rtt_back_to_back_p99_us=$VOP_BB99
veth_rtt_back_to_back_p50_us=$VETH_BB50
veth_rtt_back_to_back_p99_us=$VETH_BB99
udp64_host_to_card_pps=$VOP_UDP
veth_udp64_pps=$VETH_UDP
udp64_vs_veth=$(ratio $VOP_UDP $VETH_UDP)
idle_cpu_device_side_percent=$IDLE_DEV
idle_cpu_driver_side_percent=$IDLE_DRV
rss_anon_device_side_under_load_kb=$RSS_DEV
rss_anon_driver_side_under_load_kb=$RSS_DRV
cpus=$(nproc)
FIG
cat "$DIR/figures"

# Rewrite the net.sh section of docs/benchmarks.md.
python3 - "$DIR/figures" "$T" <<'PY'
import sys, re, datetime
figs = open(sys.argv[1]).read().strip()
sec = sys.argv[2]
doc = open("docs/benchmarks.md").read()
body = f"""<!-- net.sh begin -->
Command: `sudo tests/bench/net.sh {sec}` (run of {datetime.date.today()}; iperf3 runs of {sec} s; RTT from 300
pings 10 ms apart, so each ping finds the pumps asleep, and from 2,000 pings 0.2 ms apart, back to back;
UDP is iperf3 with 64-byte payloads at unlimited rate; idle CPU over 10 s after the traffic stopped;
`*_scraped_*` repeats the host-to-card run while both daemons' /metrics are fetched every second).

```
{figs}
```
<!-- net.sh end -->"""
if "<!-- net.sh begin -->" in doc:
    doc = re.sub(r"<!-- net.sh begin -->.*<!-- net.sh end -->", body, doc, flags=re.S)
else:
    doc += "\n## Network through vop vs kernel veth (issue 3)\n\n" + body + "\n"
open("docs/benchmarks.md", "w").write(doc)
PY
