#!/usr/bin/env bash
# Network benchmark: vop (device side in one namespace, driver side in another, loopback link) against the
# simplest userspace TAP-to-TAP relay in C (tests/tools/taprelay: one blocking read→write thread per
# direction, IFF_VNET_HDR and TSO/CSUM offloads; the ceiling for a userspace bridge on one queue) and a
# kernel veth pair between two namespaces (the kernel-only bound), all in the same run and interleaved: each
# of ROUNDS rounds measures veth, the relay, the Native AOT binary (deploy/publish.sh) as configured by
# default, the same with both ends' pumps pinned to CPU 0 (`"cpus": "0"` in both configs: aot_pinned), the
# same with `"poll": "busy"` on both ends (aot_busy), the same writing its TAP frames one writev each instead
# of batched through io_uring (VOP_TAP_URING=0: aot_nouring), and the JIT build (dotnet vop.dll, what ./vop runs) in
# turn, so drift on a shared machine hits all alike; each vop pair is started fresh in every round and
# stopped before the next one starts.
# Figures are medians over the rounds and `NAME_range=min..max` their spread; ratios (`*_vs_relay`,
# `*_vs_veth`) and differences (`*_over_relay_us`, `*_over_veth_us`) are taken within each round, then the
# median. Not a test: prints name=value lines (jit_*, aot_*, relay_*, veth_*) and rewrites the net.sh
# section of docs/benchmarks.md. Needs root, iperf3, ping, a C compiler (cc, gcc or clang).
#   tests/bench/net.sh [SECONDS_PER_IPERF_RUN [ROUNDS]]      (defaults 10 and $ROUNDS or 3)
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
ROUNDS=${2:-${ROUNDS:-3}}
[[ $T =~ ^[1-9][0-9]*$ ]] || { echo "net.sh: SECONDS_PER_IPERF_RUN must be a positive integer" >&2; exit 1; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "net.sh: ROUNDS must be a positive integer" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "net.sh: needs root" >&2; exit 1; }
for c in iperf3 ping ip python3; do command -v $c >/dev/null || { echo "net.sh: $c is missing" >&2; exit 1; }; done
CC=
for c in cc gcc clang; do command -v $c >/dev/null && { CC=$c; break; }; done
[[ $MODE == pairs ]] || [[ -n $CC ]] || { echo "net.sh: no C compiler (cc, gcc or clang) to build tests/tools/taprelay" >&2; exit 1; }
./vop --help >/dev/null   # build if needed
JIT=(dotnet "$PWD/appliance/Vop.Appliance/bin/Release/net10.0/vop.dll")
case $(uname -m) in x86_64) RID=linux-x64 ;; aarch64) RID=linux-arm64 ;; *) echo "net.sh: no RID for $(uname -m)" >&2; exit 1 ;; esac
AOT=${VOP_BINARY:-$PWD/artifacts/$RID/vop}

ID=vopb$$
DIR=$(mktemp -d /tmp/vop-net-bench.XXXXXX)
PIDS=()      # the vop pair that is up, if any
RELAY=       # the C relay, up for the whole run
cleanup() {
    for p in "${PIDS[@]}" $RELAY; do kill "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${PIDS[@]}" $RELAY; do kill -9 "$p" 2>/dev/null || true; done
    for ns in $ID-h $ID-c $ID-va $ID-vb $ID-ra $ID-rb; do ip netns del $ns 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT
if [[ $MODE == full ]] && [[ -z ${VOP_BINARY:-} ]] && { [[ ! -x $AOT ]] || [[ -n $(find appliance netstack links metrics Directory.*.props \
        \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' \) -newer "$AOT" -not -path '*/obj/*' -not -path '*/bin/*' -print -quit) ]]; }; then
    echo "net.sh: publishing the native binary (deploy/publish.sh $RID) ..." >&2
    AOT=$(deploy/publish.sh $RID 2>"$DIR/publish.log") || { cat "$DIR/publish.log" >&2; exit 1; }
fi
[[ $MODE == pairs ]] || [[ -x $AOT ]] || { echo "net.sh: no native vop at $AOT" >&2; exit 1; }
[[ $MODE == pairs ]] || $CC -O2 -pthread -o "$DIR/taprelay" tests/tools/taprelay/taprelay.c 2>"$DIR/cc.log" ||
    { echo "net.sh: $CC could not build tests/tools/taprelay/taprelay.c" >&2; cat "$DIR/cc.log" >&2; exit 1; }
for ns in $ID-h $ID-c $ID-va $ID-vb $ID-ra $ID-rb; do ip netns add $ns; ip -n $ns link set lo up; done

ping_ok() { ip netns exec "$1" ping -c 1 -W 2 "$2" >/dev/null; }

# Kernel baseline: veth between two namespaces.
ip link add vba netns $ID-va type veth peer name vbb netns $ID-vb
ip -n $ID-va addr add 10.181.0.1/24 dev vba; ip -n $ID-va link set vba up
ip -n $ID-vb addr add 10.181.0.2/24 dev vbb; ip -n $ID-vb link set vbb up
ping_ok $ID-va 10.181.0.2

# Userspace ceiling: the C relay between TAP vra in $ID-ra and TAP vrb in $ID-rb (it creates both). Idle
# between its rounds: its threads sleep in read(). Not in --pairs mode.
if [[ $MODE == full ]]; then
    "$DIR/taprelay" vra $ID-ra vrb $ID-rb >"$DIR/relay.out" 2>"$DIR/relay.log" & RELAY=$!
    for i in $(seq 500); do grep -q ready "$DIR/relay.out" && break; kill -0 $RELAY 2>/dev/null || break; sleep 0.01; done
    grep -q ready "$DIR/relay.out" || { echo "net.sh: taprelay did not start" >&2; cat "$DIR/relay.log" >&2; exit 1; }
    ip -n $ID-ra addr add 10.182.0.1/24 dev vra; ip -n $ID-rb addr add 10.182.0.2/24 dev vrb
    ip -n $ID-ra link set vra up; ip -n $ID-rb link set vrb up
    ping_ok $ID-ra 10.182.0.2 || { echo "net.sh: no ping through taprelay" >&2; cat "$DIR/relay.log" >&2; exit 1; }
fi

HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15}' /proc/$1/stat; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# iperf3 TCP single stream: FROM_NS TO_NS TO_IP [extra args] -> Gbit/s at the receiver. The CPU use of each
# process in CPU_PIDS during the client run, in % of one CPU, goes to $DIR/cpu (one number per process).
CPU_PIDS=()
tcp() {
    ip netns exec "$2" iperf3 -s -1 -B "$3" >/dev/null 2>&1 & local s=$!
    sleep 0.5
    local p i=0 before=() after=() t0 t1
    for p in "${CPU_PIDS[@]}"; do before+=($(cpu_ticks $p)); done; t0=$(now_ms)
    local out; out=$(ip netns exec "$1" iperf3 -c "$3" -t "$T" -J "${@:4}")
    t1=$(now_ms); for p in "${CPU_PIDS[@]}"; do after+=($(cpu_ticks $p)); done
    : >"$DIR/cpu"
    for p in "${CPU_PIDS[@]}"; do
        python3 -c "print('%.0f' % ((${after[i]} - ${before[i]}) * 100 / $HZ / max(($t1 - $t0) / 1000, 0.001)))" >>"$DIR/cpu"
        i=$((i + 1))
    done
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
rss_anon() { awk '/RssAnon/ {print $2}' /proc/$1/status; }
rss_file() { awk '/RssFile/ {print $2}' /proc/$1/status; }
carrier() { ip -n "$1" link show "$2" 2>/dev/null | grep -q LOWER_UP; }
# Median wall time of 5 runs of COMMAND..., in ms.
median_ms() {
    local i t0 times=()
    for i in 1 2 3 4 5; do t0=$(date +%s%N); "$@" >/dev/null; times+=($(( ($(date +%s%N) - t0) / 1000000 ))); done
    printf '%s\n' "${times[@]}" | sort -n | sed -n 3p
}
# One figure of round $R: PATH KEY VALUE. The summary at the end turns them into medians, ranges and ratios.
rec() { echo "$R $1 $2 $3" >>"$DIR/raw"; }

# The figures every path gets: PATH FROM_NS TO_NS TO_IP FROM_IP. "fwd" is host → card (a → b), "back" the
# other way; RTT and UDP run from FROM_NS.
series() {
    local P=$1 from=$2 to=$3 to_ip=$4 from_ip=$5 v x
    v=$(tcp $from $to $to_ip); rec $P fwd "$v"
    for x in $(cat "$DIR/cpu"); do rec $P cpu_fwd_$((++n_cpu)) "$x"; done; n_cpu=0
    v=$(tcp $to $from $from_ip); rec $P back "$v"
    for x in $(cat "$DIR/cpu"); do rec $P cpu_back_$((++n_cpu)) "$x"; done; n_cpu=0
    read -r v x < <(rtt $from $to_ip 0.01 300); rec $P p50 $v; rec $P p99 $x
    read -r v x < <(rtt $from $to_ip 0.0002 2000); rec $P bb50 $v; rec $P bb99 $x
    v=$(udp $from $to $to_ip); rec $P udp "$v"
}
n_cpu=0

# One build of vop for one round: NAME (jit, aot, aot_pinned, aot_busy), extra link keys for both configs
# (JSON, starting with a comma, or empty) and its command line. Device side in $ID-h (TAP vbh), driver side
# in $ID-c (TAP vbc); the pair is stopped at the end. Round 1 also measures, for jit and aot, what is not
# compared with the relay: --help time, the TCP run while /metrics is scraped, idle CPU.
measure_vop() {
    local F=$1 X=$2; shift 2
    local cmd=("$@")
    cat >"$DIR/$F-host.json" <<JSON
{ "links": [ { "name": "card0", "role": "device", "socket": "$DIR/$F.sock", "windowSize": "64M"$X,
  "devices": [ { "type": "net", "tap": "vbh", "mac": "52:54:00:be:00:01", "mtu": 1500 } ] } ] }
JSON
    cat >"$DIR/$F-card.json" <<JSON
{ "links": [ { "name": "host", "role": "driver", "socket": "$DIR/$F.sock"$X, "devices": [ { "type": "net", "tap": "vbc" } ] } ] }
JSON
    local extras=0; [[ $F == aot || $F == jit ]] && ((R == 1)) && extras=1
    ((extras == 0)) || rec $F help_ms "$(median_ms "${cmd[@]}" --help)"
    # Start: the device side from exec until its ivshmem socket listens, then the driver side from exec until
    # both TAPs have carrier (one start per round; the summary takes the median).
    local t0 t1 t2 i
    rm -f "$DIR/$F.sock"
    t0=$(now_ms)
    ip netns exec $ID-h "${cmd[@]}" run --config "$DIR/$F-host.json" >"$DIR/$F-host.log" 2>&1 & DEV=$!; PIDS+=($DEV)
    for i in $(seq 2000); do [[ -S $DIR/$F.sock ]] && break; sleep 0.005; done
    t1=$(now_ms)
    ip netns exec $ID-c "${cmd[@]}" run --config "$DIR/$F-card.json" >"$DIR/$F-card.log" 2>&1 & DRV=$!; PIDS+=($DRV)
    for i in $(seq 2000); do carrier $ID-c vbc && carrier $ID-h vbh && break; sleep 0.01; done
    t2=$(now_ms)
    rec $F device_start_to_listening_ms $((t1 - t0)); rec $F driver_start_to_carrier_ms $((t2 - t1))
    { ip -n $ID-h addr add 10.180.0.1/24 dev vbh && ip -n $ID-c addr add 10.180.0.2/24 dev vbc && ping_ok $ID-h 10.180.0.2; } ||
        { echo "net.sh: $F vop link did not come up" >&2; tail -n 20 "$DIR/$F"-*.log >&2; exit 1; }
    rec $F rss_anon_device_side_idle_kb "$(rss_anon $DEV)"; rec $F rss_anon_driver_side_idle_kb "$(rss_anon $DRV)"

    # RssAnon of both daemons sampled half-way through the host → card run.
    # RssFile: the mapped files' resident pages (the runtime and assemblies for JIT, the executable for AOT).
    ( sleep $((T / 2 + 1)); echo "$(rss_anon $DEV) $(rss_anon $DRV) $(rss_file $DEV) $(rss_file $DRV)" >"$DIR/rss" ) & local sampler=$!
    CPU_PIDS=($DEV $DRV)
    series $F $ID-h $ID-c 10.180.0.2 10.180.0.1
    CPU_PIDS=()
    wait $sampler; local rss_dev rss_drv file_dev file_drv; read -r rss_dev rss_drv file_dev file_drv <"$DIR/rss"
    rec $F rss_anon_device_side_under_load_kb $rss_dev; rec $F rss_anon_driver_side_under_load_kb $rss_drv
    rec $F rss_file_device_side_under_load_kb $file_dev; rec $F rss_file_driver_side_under_load_kb $file_drv
    if ((extras == 1)); then
        # The host-to-card run again while both daemons' /metrics are scraped every second.
        scrape() { ip netns exec "$1" bash -c 'while true; do exec 3<>/dev/tcp/127.0.0.1/9465 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3 >/dev/null; exec 3<&-; sleep 1; done' & }
        scrape $ID-h; local s1=$!; scrape $ID-c; local s2=$!
        rec $F tcp_host_to_card_scraped_gbps "$(tcp $ID-h $ID-c 10.180.0.2)"
        kill $s1 $s2 2>/dev/null; wait $s1 $s2 2>/dev/null || true
        sleep 2
        local a1 a2 b1 b2
        a1=$(cpu_ticks $DEV); a2=$(cpu_ticks $DRV); sleep 10; b1=$(cpu_ticks $DEV); b2=$(cpu_ticks $DRV)
        rec $F idle_cpu_device_side_percent "$(python3 -c "print('%.2f' % (($b1-$a1)*100/$HZ/10))")"
        rec $F idle_cpu_driver_side_percent "$(python3 -c "print('%.2f' % (($b2-$a2)*100/$HZ/10))")"
    fi
    kill $DEV $DRV; wait $DEV $DRV 2>/dev/null || true
    PIDS=()   # both ended: nothing for cleanup to signal (their PIDs may be reused)
}

# TUN mode (issue 16): the native build with "mode": "tun" on both ends, TCP each way only, rec'd as path
# "tun" (fwd, back) and compared in the summary with the same round's tap↔tap figures of the native build.
measure_tun() {
    local dev drv i
    cat >"$DIR/tun-host.json" <<JSON
{ "links": [ { "name": "card0", "role": "device", "socket": "$DIR/tun.sock", "windowSize": "64M",
  "devices": [ { "type": "net", "tap": "vbh", "mode": "tun", "mac": "52:54:00:be:00:01", "mtu": 1500 } ] } ] }
JSON
    cat >"$DIR/tun-card.json" <<JSON
{ "links": [ { "name": "host", "role": "driver", "socket": "$DIR/tun.sock", "devices": [ { "type": "net", "tap": "vbc", "mode": "tun" } ] } ] }
JSON
    rm -f "$DIR/tun.sock"
    ip netns exec $ID-h "$@" run --config "$DIR/tun-host.json" >"$DIR/tun-host.log" 2>&1 & dev=$!; PIDS+=($dev)
    for i in $(seq 2000); do [[ -S $DIR/tun.sock ]] && break; sleep 0.005; done
    ip netns exec $ID-c "$@" run --config "$DIR/tun-card.json" >"$DIR/tun-card.log" 2>&1 & drv=$!; PIDS+=($drv)
    for i in $(seq 2000); do carrier $ID-c vbc && carrier $ID-h vbh && break; sleep 0.01; done
    ip -n $ID-h addr add 10.183.0.1/24 dev vbh
    ip -n $ID-c addr add 10.183.0.2/24 dev vbc
    ping_ok $ID-h 10.183.0.2 || { echo "net.sh: tun vop link did not come up" >&2; cat "$DIR"/tun-*.log >&2; exit 1; }
    rec tun fwd "$(tcp $ID-h $ID-c 10.183.0.2)"
    rec tun back "$(tcp $ID-c $ID-h 10.183.0.1)"
    kill $dev $drv; wait $dev $drv 2>/dev/null || true
    PIDS=()
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

: >"$DIR/raw"
for ((R = 1; R <= ROUNDS; R++)); do
    echo "net.sh: round $R of $ROUNDS: veth, relay, vop AOT (default, pinned, busy), vop JIT, vop AOT tun↔tun ..." >&2
    series veth $ID-va $ID-vb 10.181.0.2 10.181.0.1
    CPU_PIDS=($RELAY); series relay $ID-ra $ID-rb 10.182.0.2 10.182.0.1; CPU_PIDS=()
    measure_vop aot "" "$AOT"
    measure_vop aot_pinned ', "cpus": "0"' "$AOT"
    measure_vop aot_busy ', "poll": "busy"' "$AOT"
    measure_vop aot_nouring "" env VOP_TAP_URING=0 "$AOT"
    measure_vop jit "" "${JIT[@]}"
    measure_tun "$AOT"
done
kill $RELAY; wait $RELAY 2>/dev/null || true
RELAY=
cat >"$DIR/env" <<ENV
rounds=$ROUNDS
seconds_per_iperf_run=$T
aot_binary_bytes=$(stat -c %s "$AOT")
cpus=$(nproc)
load_average_1min_at_end=$(cut -d' ' -f1 /proc/loadavg)
compiler=$CC
ENV

# Medians over rounds, ranges, per-round ratios: the name=value lines.
python3 - "$DIR/raw" "$DIR/env" >"$DIR/figures" <<'PY'
import sys, statistics
raw = {}
for line in open(sys.argv[1]):
    r, p, k, v = line.split()
    raw.setdefault((p, k), {})[int(r)] = float(v)
env = dict(l.strip().split("=", 1) for l in open(sys.argv[2]) if "=" in l)
rounds = sorted({r for d in raw.values() for r in d})

def fmt(x, digits):
    return f"{x:.{digits}f}" if digits else str(int(round(x)))
def emit(name, values, digits, spread=True):
    if not values: return
    print(f"{name}={fmt(statistics.median(values), digits)}")
    if spread: print(f"{name}_range={fmt(min(values), digits)}..{fmt(max(values), digits)}")
def per_round(p, k): return raw.get((p, k), {})
def ratio(a, b, k, kb=None):   # per-round a/b of figure k, in the rounds both have
    x, y = per_round(a, k), per_round(b, kb or k)
    return [x[r] / y[r] for r in rounds if r in x and r in y and y[r]]
def diff(a, b, k):
    x, y = per_round(a, k), per_round(b, k)
    return [x[r] - y[r] for r in rounds if r in x and r in y]

VOPS = ("jit", "aot", "aot_pinned", "aot_busy", "aot_nouring")
tcp = {"veth": ("a_to_b", "b_to_a"), "relay": ("a_to_b", "b_to_a"), **{v: ("host_to_card", "card_to_host") for v in VOPS}}
udp = {"veth": "udp64_pps", "relay": "udp64_pps", **{v: "udp64_host_to_card_pps" for v in VOPS}}
for p in VOPS + ("relay", "veth"):
    fwd, back = tcp[p]
    vs = [b for b in ("relay", "veth") if b != p and p != "veth"]
    for key, d in (("fwd", fwd), ("back", back)):
        emit(f"{p}_tcp_{d}_gbps", list(per_round(p, key).values()), 2)
        for b in vs: emit(f"{p}_tcp_{d}_vs_{b}", ratio(p, b, key), 2)
    for key, name in (("p50", "rtt_p50"), ("p99", "rtt_p99")):
        emit(f"{p}_{name}_us", list(per_round(p, key).values()), 0)
        for b in vs:
            emit(f"{p}_{name}_vs_{b}", ratio(p, b, key), 2)
            emit(f"{p}_{name}_over_{b}_us", diff(p, b, key), 0)
    emit(f"{p}_rtt_back_to_back_p50_us", list(per_round(p, "bb50").values()), 0)
    emit(f"{p}_rtt_back_to_back_p99_us", list(per_round(p, "bb99").values()), 0)
    emit(f"{p}_{udp[p]}", list(per_round(p, "udp").values()), 0)
    for b in vs: emit(f"{p}_udp64_vs_{b}", ratio(p, b, "udp"), 2)
    # CPU of the forwarding processes during each TCP run, % of one CPU (relay: one process; vop: device
    # side, driver side).
    sides = ["", ] if p == "relay" else ["_device_side", "_driver_side"] if p != "veth" else []
    for key, d in (("cpu_fwd", fwd), ("cpu_back", back)):
        for i, side in enumerate(sides, 1):
            emit(f"{p}_tcp_{d}_cpu{side}_percent", list(per_round(p, f"{key}_{i}").values()), 0)
    if p in ("jit", "aot"):
        emit(f"{p}_tcp_host_to_card_scraped_gbps", list(per_round(p, "tcp_host_to_card_scraped_gbps").values()), 2, False)
        emit(f"{p}_tcp_scraped_vs_unscraped", [per_round(p, "tcp_host_to_card_scraped_gbps")[r] / per_round(p, "fwd")[r]
             for r in per_round(p, "tcp_host_to_card_scraped_gbps")], 2, False)
        for k, digits in (("idle_cpu_device_side_percent", 2), ("idle_cpu_driver_side_percent", 2),
                          ("rss_anon_device_side_idle_kb", 0), ("rss_anon_driver_side_idle_kb", 0),
                          ("rss_anon_device_side_under_load_kb", 0), ("rss_anon_driver_side_under_load_kb", 0),
                          ("rss_file_device_side_under_load_kb", 0), ("rss_file_driver_side_under_load_kb", 0),
                          ("help_ms", 0), ("device_start_to_listening_ms", 0), ("driver_start_to_carrier_ms", 0)):
            emit(f"{p}_{k}", list(per_round(p, k).values()), digits, False)
# TUN mode: tun↔tun TCP beside the native tap↔tap of the same round; tun_vs_tap over both directions.
for key, d in (("fwd", "host_to_card"), ("back", "card_to_host")):
    emit(f"tun_tcp_{d}_gbps", list(per_round("tun", key).values()), 2)
    emit(f"tun_tcp_{d}_vs_tap", ratio("tun", "aot", key), 2)
emit("tun_vs_tap", ratio("tun", "aot", "fwd") + ratio("tun", "aot", "back"), 2)
for k, v in env.items(): print(f"{k}={v}")
PY
cat "$DIR/figures"

# Rewrite the net.sh section of docs/benchmarks.md.
python3 - "$DIR/figures" <<'PY'
import sys, re, datetime, textwrap
figs = open(sys.argv[1]).read().strip()
f = dict(l.split("=", 1) for l in figs.splitlines())
sec, rounds = f["seconds_per_iperf_run"], f["rounds"]
def mr(name):   # "median (min–max)"
    lo, hi = f[name + "_range"].split("..")
    return f"{f[name]} ({lo}–{hi})" if lo != hi else f[name]
VOPS = ("jit", "aot", "aot_pinned", "aot_busy", "aot_nouring")
names = {"veth": ("a_to_b", "b_to_a", "udp64_pps"), "relay": ("a_to_b", "b_to_a", "udp64_pps"),
         **{v: ("host_to_card", "card_to_host", "udp64_host_to_card_pps") for v in VOPS}}
cols = VOPS + ("relay", "veth")
def row(label, fn):
    return f"| {label} | " + " | ".join(fn(p) for p in cols) + " |"
def vs(p, stem):
    out = [f"{mr(f'{p}_{stem}_vs_{b}')} × {b}" for b in ("relay", "veth") if f"{p}_{stem}_vs_{b}" in f]
    return "<br>".join(out) if out else "1"
rows = [
    row("TCP host → card (a → b), Gbit/s", lambda p: mr(f"{p}_tcp_{names[p][0]}_gbps")),
    row("… ratio, median of the rounds' ratios", lambda p: vs(p, f"tcp_{names[p][0]}")),
    row("TCP card → host (b → a), Gbit/s", lambda p: mr(f"{p}_tcp_{names[p][1]}_gbps")),
    row("… ratio", lambda p: vs(p, f"tcp_{names[p][1]}")),
    row("ping RTT p50, 10 ms apart, µs", lambda p: mr(f"{p}_rtt_p50_us")),
    row("… ratio", lambda p: vs(p, "rtt_p50")),
    row("ping RTT p99, 10 ms apart, µs", lambda p: mr(f"{p}_rtt_p99_us")),
    row("… ratio", lambda p: vs(p, "rtt_p99")),
    row("ping RTT p50 / p99, back to back, µs", lambda p: f"{f[p+'_rtt_back_to_back_p50_us']} / {f[p+'_rtt_back_to_back_p99_us']}"),
    row("UDP 64-byte packets/s", lambda p: mr(f"{p}_{names[p][2]}")),
    row("… ratio", lambda p: vs(p, "udp64")),
    row("CPU during TCP host → card, % of one CPU", lambda p: "" if p == "veth" else
        f"{f[p+'_tcp_a_to_b_cpu_percent']}" if p == "relay" else
        f"{f[p+'_tcp_host_to_card_cpu_device_side_percent']} + {f[p+'_tcp_host_to_card_cpu_driver_side_percent']}"),
    row("CPU during TCP card → host, % of one CPU", lambda p: "" if p == "veth" else
        f"{f[p+'_tcp_b_to_a_cpu_percent']}" if p == "relay" else
        f"{f[p+'_tcp_card_to_host_cpu_device_side_percent']} + {f[p+'_tcp_card_to_host_cpu_driver_side_percent']}"),
]
vop_only = [
    ("TCP host → card while /metrics is scraped, × unscraped (round 1)", lambda p: f[p+'_tcp_scraped_vs_unscraped']),
    ("RssAnon device / driver side, idle, MB", lambda p: f"{int(f[p+'_rss_anon_device_side_idle_kb'])/1024:.1f} / {int(f[p+'_rss_anon_driver_side_idle_kb'])/1024:.1f}"),
    ("RssAnon device / driver side, under load, MB", lambda p: f"{int(f[p+'_rss_anon_device_side_under_load_kb'])/1024:.1f} / {int(f[p+'_rss_anon_driver_side_under_load_kb'])/1024:.1f}"),
    ("RssFile device / driver side, under load, MB", lambda p: f"{int(f[p+'_rss_file_device_side_under_load_kb'])/1024:.1f} / {int(f[p+'_rss_file_driver_side_under_load_kb'])/1024:.1f}"),
    ("`vop --help`, ms (median of 5, round 1)", lambda p: f[p+'_help_ms']),
    ("device side start → socket listening, ms", lambda p: f[p+'_device_start_to_listening_ms']),
    ("driver side start → carrier on both TAPs, ms", lambda p: f[p+'_driver_start_to_carrier_ms']),
    ("idle CPU device / driver side, % (round 1)", lambda p: f"{f[p+'_idle_cpu_device_side_percent']} / {f[p+'_idle_cpu_driver_side_percent']}"),
]
rows += [f"| {label} | {fn('jit')} | {fn('aot')} | | | | | |" for label, fn in vop_only]
table = ("| | vop JIT (dotnet vop.dll) | vop Native AOT | vop AOT, both ends `\"cpus\": \"0\"` | vop AOT, both ends `\"poll\": \"busy\"` | vop AOT, TAP writes one writev each (`VOP_TAP_URING=0`) | C TAP relay | kernel veth |\n"
         "|---|---|---|---|---|---|---|---|\n"
         + "\n".join(rows))
doc = open("docs/benchmarks.md").read()
text = f"""Command: `sudo tests/bench/net.sh {sec} {rounds}` (run of {datetime.date.today()}; {f['cpus']} CPUs, 1-minute
load average {f['load_average_1min_at_end']} at the end). {rounds} rounds, each measuring in turn the kernel veth pair, the C
TAP relay (`tests/tools/taprelay`, built with `{f['compiler']} -O2 -pthread`: two TAPs with IFF_VNET_HDR and TSO/CSUM
offloads, one blocking read→write thread per direction), the Native AOT binary (`deploy/publish.sh`,
{int(f['aot_binary_bytes'])/1e6:.1f} MB) with the default config, the same with both ends' pumps pinned to one CPU
(`"cpus": "0"` in both configs), the same with `"poll": "busy"` on both ends (unpinned), the same writing each TAP
frame with its own writev instead of io_uring batches (`VOP_TAP_URING=0`) and the JIT build (`dotnet vop.dll`, what `./vop` runs), each vop pair
started fresh and stopped before the next. Each figure is the median over the rounds with the min–max in
brackets; each ratio is taken within a round (so drift between rounds cancels) and then the median. iperf3
runs of {sec} s, one TCP stream; RTT from 300 pings 10 ms apart, so each ping finds the threads asleep, and
from 2,000 pings 0.2 ms apart, back to back; UDP is iperf3 with 64-byte payloads at unlimited rate for 5 s;
CPU is the forwarding processes' user+system time over the TCP run (vop: device side + driver side).
RssAnon after the link came up (idle) and half-way through the host → card run (under load); idle CPU over
10 s after the traffic stopped; the scraped run repeats host → card while both daemons' /metrics are fetched
every second. Start times: the device side from exec until its ivshmem socket listens, then the driver side
from exec until both TAPs have carrier (negotiation included). RssAnon is the process's own memory, RssFile
the resident pages of mapped files (the runtime and assemblies for the JIT build, the executable for AOT);
neither counts the shared window (RssShmem)."""
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
    doc += "\n## Network through vop vs the C TAP relay and kernel veth (issues 3, 11 and 15)\n\n" + body + "\n"
open("docs/benchmarks.md", "w").write(doc)
PY
