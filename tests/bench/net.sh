#!/usr/bin/env bash
# Network benchmark: vop (device side in one namespace, driver side in another, loopback link) against a
# kernel veth pair between two namespaces, measured in the same run, for both builds of vop one after the
# other: the JIT build (dotnet vop.dll, what ./vop runs) and the Native AOT binary (deploy/publish.sh).
# Not a test: prints one name=value line per figure (jit_*, aot_*, veth_*) and rewrites the net.sh
# section of docs/benchmarks.md. Needs root, iperf3, ping.
#   tests/bench/net.sh [SECONDS_PER_IPERF_RUN]
#   tests/bench/net.sh --pairs [SECONDS_PER_IPERF_RUN]   multiqueue: the same link with queuePairs 1 and 2 in
#     one run (JIT build; iperf3 -P 4 each way, UDP 64-byte pps with 4 streams); rewrites the net.sh pairs
#     section of docs/benchmarks.md.
# VOP_BINARY=/abs/path/vop measures that native binary; otherwise artifacts/RID/vop, published first
# when it is missing or older than the sources.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=full
if [[ ${1:-} == --pairs ]]; then MODE=pairs; shift; fi
T=${1:-10}
[[ $(id -u) -eq 0 ]] || { echo "net.sh: needs root" >&2; exit 1; }
for c in iperf3 ping ip; do command -v $c >/dev/null || { echo "net.sh: $c is missing" >&2; exit 1; }; done
./vop --help >/dev/null   # build if needed
JIT=(dotnet "$PWD/appliance/Vop.Appliance/bin/Release/net10.0/vop.dll")
case $(uname -m) in x86_64) RID=linux-x64 ;; aarch64) RID=linux-arm64 ;; *) echo "net.sh: no RID for $(uname -m)" >&2; exit 1 ;; esac
AOT=${VOP_BINARY:-$PWD/artifacts/$RID/vop}

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
if [[ $MODE == full ]] && [[ -z ${VOP_BINARY:-} ]] && { [[ ! -x $AOT ]] || [[ -n $(find appliance netstack links metrics Directory.*.props \
        \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' \) -newer "$AOT" -not -path '*/obj/*' -not -path '*/bin/*' -print -quit) ]]; }; then
    echo "net.sh: publishing the native binary (deploy/publish.sh $RID) ..." >&2
    AOT=$(deploy/publish.sh $RID 2>"$DIR/publish.log") || { cat "$DIR/publish.log" >&2; exit 1; }
fi
[[ $MODE == pairs ]] || [[ -x $AOT ]] || { echo "net.sh: no native vop at $AOT" >&2; exit 1; }
for ns in $ID-h $ID-c $ID-va $ID-vb; do ip netns add $ns; ip -n $ns link set lo up; done

# Kernel baseline: veth between two namespaces.
ip link add vba netns $ID-va type veth peer name vbb netns $ID-vb
ip -n $ID-va addr add 10.181.0.1/24 dev vba; ip -n $ID-va link set vba up
ip -n $ID-vb addr add 10.181.0.2/24 dev vbb; ip -n $ID-vb link set vbb up

ping_ok() { ip netns exec "$1" ping -c 1 -W 2 "$2" >/dev/null; }
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
rss_file() { awk '/RssFile/ {print $2}' /proc/$1/status; }
median3() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
ratio() { python3 -c "print('%.2f' % ($1/$2 if $2 else 0))"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
carrier() { ip -n "$1" link show "$2" 2>/dev/null | grep -q LOWER_UP; }
# Median wall time of 5 runs of COMMAND..., in ms.
median_ms() {
    local i t0 times=()
    for i in 1 2 3 4 5; do t0=$(date +%s%N); "$@" >/dev/null; times+=($(( ($(date +%s%N) - t0) / 1000000 ))); done
    printf '%s\n' "${times[@]}" | sort -n | sed -n 3p
}

# Multiqueue: one link (JIT build) brought up with queuePairs P, for P = 1 and 2 in the same run.
pairs() {
    local P=$1 win=64M; ((P == 1)) || win=128M
    local key=""; ((P == 1)) || key=", \"queuePairs\": $P"
    cat >"$DIR/p$P-host.json" <<JSON
{ "links": [ { "name": "card0", "role": "device", "socket": "$DIR/p$P.sock", "windowSize": "$win",
  "devices": [ { "type": "net", "tap": "vbh", "mac": "52:54:00:be:00:01", "mtu": 1500$key } ] } ] }
JSON
    cat >"$DIR/p$P-card.json" <<JSON
{ "links": [ { "name": "host", "role": "driver", "socket": "$DIR/p$P.sock", "devices": [ { "type": "net", "tap": "vbc"$key } ] } ] }
JSON
    rm -f "$DIR/p$P.sock"
    ip netns exec $ID-h "${JIT[@]}" run --config "$DIR/p$P-host.json" >"$DIR/p$P-host.log" 2>&1 & DEV=$!; PIDS+=($DEV)
    for i in $(seq 2000); do [[ -S $DIR/p$P.sock ]] && break; sleep 0.005; done
    ip netns exec $ID-c "${JIT[@]}" run --config "$DIR/p$P-card.json" >"$DIR/p$P-card.log" 2>&1 & DRV=$!; PIDS+=($DRV)
    for i in $(seq 2000); do carrier $ID-c vbc && carrier $ID-h vbh && break; sleep 0.01; done
    ip -n $ID-h addr add 10.180.0.1/24 dev vbh
    ip -n $ID-c addr add 10.180.0.2/24 dev vbc
    ping_ok $ID-h 10.180.0.2 || { echo "net.sh: $P-pair vop link did not come up" >&2; cat "$DIR"/p$P-*.log >&2; exit 1; }
    local h2c c2h one pps
    h2c=$(tcp $ID-h $ID-c 10.180.0.2 -P 4)
    c2h=$(tcp $ID-c $ID-h 10.180.0.1 -P 4)
    one=$(tcp $ID-h $ID-c 10.180.0.2)
    ip netns exec $ID-c iperf3 -s -1 -B 10.180.0.2 >/dev/null 2>&1 & local s=$!
    sleep 0.5
    pps=$(ip netns exec $ID-h iperf3 -c 10.180.0.2 -u -l 64 -b 0 -t 5 -P 4 -J | python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]["sum"]; print("%.0f" % ((e["packets"]-e["lost_packets"])/e["seconds"]))')
    wait $s 2>/dev/null || true
    kill $DEV $DRV; wait $DEV $DRV 2>/dev/null || true
    PIDS=()
    cat >>"$DIR/figures" <<FIG
pairs${P}_tcp_p4_host_to_card_gbps=$h2c
pairs${P}_tcp_p4_card_to_host_gbps=$c2h
pairs${P}_tcp_p1_host_to_card_gbps=$one
pairs${P}_udp64_p4_host_to_card_pps=$pps
FIG
}
if [[ $MODE == pairs ]]; then
    : >"$DIR/figures"
    pairs 1
    pairs 2
    echo "cpus=$(nproc)" >>"$DIR/figures"
    echo "load_average_1min_at_end=$(cut -d' ' -f1 /proc/loadavg)" >>"$DIR/figures"
    cat "$DIR/figures"
    python3 - "$DIR/figures" "$T" <<'PY'
import sys, re, datetime
figs = open(sys.argv[1]).read().strip()
f = dict(l.split("=", 1) for l in figs.splitlines())
rows = [
    ("TCP host → card, iperf3 -P 4, Gbit/s", "tcp_p4_host_to_card_gbps"),
    ("TCP card → host, iperf3 -P 4, Gbit/s", "tcp_p4_card_to_host_gbps"),
    ("TCP host → card, one stream, Gbit/s", "tcp_p1_host_to_card_gbps"),
    ("UDP 64-byte packets/s, 4 streams", "udp64_p4_host_to_card_pps"),
]
table = "| | 1 pair | 2 pairs |\n|---|---|---|\n" + "\n".join(f"| {n} | {f['pairs1_'+k]} | {f['pairs2_'+k]} |" for n, k in rows)
body = f"""<!-- net.sh pairs begin -->
Command: `sudo tests/bench/net.sh --pairs {sys.argv[2]}` (run of {datetime.date.today()}; {f['cpus']} CPUs, 1-minute load
average {f['load_average_1min_at_end']} at the end). The JIT build, one loopback link brought up with `queuePairs` 1, then
2 (both ends), iperf3 runs of {sys.argv[2]} s.

{table}

```
{figs}
```
<!-- net.sh pairs end -->"""
doc = open("docs/benchmarks.md").read()
if "<!-- net.sh pairs begin -->" in doc:
    doc = re.sub(r"<!-- net.sh pairs begin -->.*<!-- net.sh pairs end -->", lambda m: body, doc, flags=re.S)
else:
    doc += "\n## Multiqueue: 1 vs 2 queue pairs (issue 14)\n\n" + body + "\n"
open("docs/benchmarks.md", "w").write(doc)
PY
    exit 0
fi

VETH_H2C=$(tcp $ID-va $ID-vb 10.181.0.2)
VETH_C2H=$(tcp $ID-vb $ID-va 10.181.0.1)
read -r VETH_P50 VETH_P99 < <(rtt $ID-va 10.181.0.2 0.01 300)
read -r VETH_BB50 VETH_BB99 < <(rtt $ID-va 10.181.0.2 0.0002 2000)
VETH_UDP=$(udp $ID-va $ID-vb 10.181.0.2)

# One build of vop through the whole series: BUILD (jit or aot) and its command line. Device side in $ID-h
# (TAP vbh), driver side in $ID-c (TAP vbc); the pair is stopped before the other build starts.
measure() {
    local F=$1; shift
    local cmd=("$@")
    cat >"$DIR/$F-host.json" <<JSON
{ "links": [ { "name": "card0", "role": "device", "socket": "$DIR/$F.sock", "windowSize": "64M",
  "devices": [ { "type": "net", "tap": "vbh", "mac": "52:54:00:be:00:01", "mtu": 1500 } ] } ] }
JSON
    cat >"$DIR/$F-card.json" <<JSON
{ "links": [ { "name": "host", "role": "driver", "socket": "$DIR/$F.sock", "devices": [ { "type": "net", "tap": "vbc" } ] } ] }
JSON
    local help_ms; help_ms=$(median_ms "${cmd[@]}" --help)
    # Start, 3 times (medians): the device side from exec until its ivshmem socket listens, then the driver
    # side from exec until both TAPs have carrier. The third pair stays up for the measurements.
    local k t0 t1 t2 listen=() carrier_ms=()
    for k in 1 2 3; do
        ((k == 1)) || { kill $DEV $DRV; wait $DEV $DRV 2>/dev/null || true; PIDS=(); }
        rm -f "$DIR/$F.sock"
        t0=$(now_ms)
        ip netns exec $ID-h "${cmd[@]}" run --config "$DIR/$F-host.json" >"$DIR/$F-host.log" 2>&1 & DEV=$!; PIDS+=($DEV)
        for i in $(seq 2000); do [[ -S $DIR/$F.sock ]] && break; sleep 0.005; done
        t1=$(now_ms)
        ip netns exec $ID-c "${cmd[@]}" run --config "$DIR/$F-card.json" >"$DIR/$F-card.log" 2>&1 & DRV=$!; PIDS+=($DRV)
        for i in $(seq 2000); do carrier $ID-c vbc && carrier $ID-h vbh && break; sleep 0.01; done
        t2=$(now_ms)
        listen+=($((t1 - t0))); carrier_ms+=($((t2 - t1)))
    done
    ip -n $ID-h addr add 10.180.0.1/24 dev vbh
    ip -n $ID-c addr add 10.180.0.2/24 dev vbc
    ping_ok $ID-h 10.180.0.2 || { echo "net.sh: $F vop link did not come up" >&2; cat "$DIR/$F"-*.log >&2; exit 1; }
    local rss_idle_dev rss_idle_drv; rss_idle_dev=$(rss_anon $DEV); rss_idle_drv=$(rss_anon $DRV)

    # RssAnon of both daemons sampled half-way through the first vop run.
    # RssFile: the mapped files' resident pages (the runtime and assemblies for JIT, the executable for AOT).
    ( sleep $((T / 2 + 1)); echo "$(rss_anon $DEV) $(rss_anon $DRV) $(rss_file $DEV) $(rss_file $DRV)" >"$DIR/rss" ) & local sampler=$!
    local h2c; h2c=$(tcp $ID-h $ID-c 10.180.0.2)
    wait $sampler; local rss_dev rss_drv file_dev file_drv; read -r rss_dev rss_drv file_dev file_drv <"$DIR/rss"
    local c2h; c2h=$(tcp $ID-c $ID-h 10.180.0.1)
    # The same host-to-card run while both daemons' /metrics are scraped every second.
    scrape() { ip netns exec "$1" bash -c 'while true; do exec 3<>/dev/tcp/127.0.0.1/9465 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3 >/dev/null; exec 3<&-; sleep 1; done' & }
    scrape $ID-h; local s1=$!; scrape $ID-c; local s2=$!
    local scraped; scraped=$(tcp $ID-h $ID-c 10.180.0.2)
    kill $s1 $s2 2>/dev/null; wait $s1 $s2 2>/dev/null || true
    local p50 p99 bb50 bb99
    read -r p50 p99 < <(rtt $ID-h 10.180.0.2 0.01 300)
    read -r bb50 bb99 < <(rtt $ID-h 10.180.0.2 0.0002 2000)
    local pps; pps=$(udp $ID-h $ID-c 10.180.0.2)
    sleep 2
    local a1 a2 b1 b2 hz
    a1=$(cpu_ticks $DEV); a2=$(cpu_ticks $DRV); sleep 10; b1=$(cpu_ticks $DEV); b2=$(cpu_ticks $DRV)
    hz=$(getconf CLK_TCK)
    kill $DEV $DRV; wait $DEV $DRV 2>/dev/null || true
    PIDS=()   # both ended: nothing for cleanup to signal (their PIDs may be reused)
    cat >>"$DIR/figures" <<FIG
${F}_tcp_host_to_card_gbps=$h2c
${F}_tcp_card_to_host_gbps=$c2h
${F}_tcp_host_to_card_vs_veth=$(ratio $h2c $VETH_H2C)
${F}_tcp_card_to_host_vs_veth=$(ratio $c2h $VETH_C2H)
${F}_tcp_host_to_card_scraped_gbps=$scraped
${F}_tcp_scraped_vs_unscraped=$(ratio $scraped $h2c)
${F}_rtt_p50_us=$p50
${F}_rtt_p99_us=$p99
${F}_rtt_p50_over_veth_us=$((p50 - VETH_P50))
${F}_rtt_back_to_back_p50_us=$bb50
${F}_rtt_back_to_back_p99_us=$bb99
${F}_udp64_host_to_card_pps=$pps
${F}_udp64_vs_veth=$(ratio $pps $VETH_UDP)
${F}_idle_cpu_device_side_percent=$(python3 -c "print('%.2f' % (($b1-$a1)*100/$hz/10))")
${F}_idle_cpu_driver_side_percent=$(python3 -c "print('%.2f' % (($b2-$a2)*100/$hz/10))")
${F}_rss_anon_device_side_idle_kb=$rss_idle_dev
${F}_rss_anon_driver_side_idle_kb=$rss_idle_drv
${F}_rss_anon_device_side_under_load_kb=$rss_dev
${F}_rss_anon_driver_side_under_load_kb=$rss_drv
${F}_rss_file_device_side_under_load_kb=$file_dev
${F}_rss_file_driver_side_under_load_kb=$file_drv
${F}_help_ms=$help_ms
${F}_device_start_to_listening_ms=$(median3 "${listen[@]}")
${F}_driver_start_to_carrier_ms=$(median3 "${carrier_ms[@]}")
FIG
}

: >"$DIR/figures"
measure jit "${JIT[@]}"
measure aot "$AOT"
cat >>"$DIR/figures" <<FIG
veth_tcp_a_to_b_gbps=$VETH_H2C
veth_tcp_b_to_a_gbps=$VETH_C2H
veth_rtt_p50_us=$VETH_P50
veth_rtt_p99_us=$VETH_P99
veth_rtt_back_to_back_p50_us=$VETH_BB50
veth_rtt_back_to_back_p99_us=$VETH_BB99
veth_udp64_pps=$VETH_UDP
aot_binary_bytes=$(stat -c %s "$AOT")
cpus=$(nproc)
load_average_1min_at_end=$(cut -d' ' -f1 /proc/loadavg)
FIG
cat "$DIR/figures"

# Rewrite the net.sh section of docs/benchmarks.md.
python3 - "$DIR/figures" "$T" <<'PY'
import sys, re, datetime, textwrap
figs = open(sys.argv[1]).read().strip()
f = dict(l.split("=", 1) for l in figs.splitlines())
sec = sys.argv[2]
rows = [
    ("TCP host → card, Gbit/s (× veth)", lambda p: f"{f[p+'_tcp_host_to_card_gbps']} ({f[p+'_tcp_host_to_card_vs_veth']})", f["veth_tcp_a_to_b_gbps"]),
    ("TCP card → host, Gbit/s (× veth)", lambda p: f"{f[p+'_tcp_card_to_host_gbps']} ({f[p+'_tcp_card_to_host_vs_veth']})", f["veth_tcp_b_to_a_gbps"]),
    ("ping RTT p50 / p99, 10 ms apart, µs", lambda p: f"{f[p+'_rtt_p50_us']} / {f[p+'_rtt_p99_us']}", f"{f['veth_rtt_p50_us']} / {f['veth_rtt_p99_us']}"),
    ("ping RTT p50 / p99, back to back, µs", lambda p: f"{f[p+'_rtt_back_to_back_p50_us']} / {f[p+'_rtt_back_to_back_p99_us']}", f"{f['veth_rtt_back_to_back_p50_us']} / {f['veth_rtt_back_to_back_p99_us']}"),
    ("UDP 64-byte packets/s", lambda p: f[p+'_udp64_host_to_card_pps'], f["veth_udp64_pps"]),
    ("RssAnon device / driver side, idle, MB", lambda p: f"{int(f[p+'_rss_anon_device_side_idle_kb'])/1024:.1f} / {int(f[p+'_rss_anon_driver_side_idle_kb'])/1024:.1f}", ""),
    ("RssAnon device / driver side, under load, MB", lambda p: f"{int(f[p+'_rss_anon_device_side_under_load_kb'])/1024:.1f} / {int(f[p+'_rss_anon_driver_side_under_load_kb'])/1024:.1f}", ""),
    ("RssFile device / driver side, under load, MB", lambda p: f"{int(f[p+'_rss_file_device_side_under_load_kb'])/1024:.1f} / {int(f[p+'_rss_file_driver_side_under_load_kb'])/1024:.1f}", ""),
    ("`vop --help`, ms (median of 5)", lambda p: f[p+'_help_ms'], ""),
    ("device side start → socket listening, ms", lambda p: f[p+'_device_start_to_listening_ms'], ""),
    ("driver side start → carrier on both TAPs, ms", lambda p: f[p+'_driver_start_to_carrier_ms'], ""),
    ("idle CPU device / driver side, %", lambda p: f"{f[p+'_idle_cpu_device_side_percent']} / {f[p+'_idle_cpu_driver_side_percent']}", ""),
]
table = "| | JIT (dotnet vop.dll) | Native AOT (vop) | kernel veth |\n|---|---|---|---|\n" + "\n".join(
    f"| {name} | {fn('jit')} | {fn('aot')} | {veth} |" for name, fn, veth in rows)
doc = open("docs/benchmarks.md").read()
text = f"""Command: `sudo tests/bench/net.sh {sec}` (run of {datetime.date.today()}; {f['cpus']} CPUs, 1-minute load
average {f['load_average_1min_at_end']} at the end). One run measures the kernel veth baseline, then the JIT build
(`dotnet vop.dll`, what `./vop` runs), then the Native AOT binary (`deploy/publish.sh`,
{int(f['aot_binary_bytes'])/1e6:.1f} MB), each pair started fresh and stopped before the next: iperf3 runs of {sec} s;
RTT from 300 pings 10 ms apart, so each ping finds the pumps asleep, and from 2,000 pings 0.2 ms apart, back to
back; UDP is iperf3 with 64-byte payloads at unlimited rate; RssAnon after the link came up (idle) and
half-way through the first TCP run (under load); idle CPU over 10 s after the traffic stopped; `*_scraped_*`
repeats the host-to-card run while both daemons' /metrics are fetched every second. Start times (medians of
3 starts): the device side from exec until its ivshmem socket listens, then the driver side from exec until
both TAPs have carrier (negotiation included). RssAnon is the process's own memory, RssFile the resident
pages of mapped files (the runtime and assemblies for the JIT build, the executable for AOT); neither counts
the shared window (RssShmem)."""
text = textwrap.fill(" ".join(text.split()), width=110, break_on_hyphens=False)
body = f"""<!-- net.sh begin -->
{text}

{table}

```
{figs}
```
<!-- net.sh end -->"""
if "<!-- net.sh begin -->" in doc:
    doc = re.sub(r"<!-- net.sh begin -->.*<!-- net.sh end -->", lambda m: body, doc, flags=re.S)
else:
    doc += "\n## Network through vop vs kernel veth (issue 3)\n\n" + body + "\n"
open("docs/benchmarks.md", "w").write(doc)
PY
