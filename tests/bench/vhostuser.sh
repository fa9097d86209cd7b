#!/usr/bin/env bash
# vhost-user benchmark (issue 15 part 6): vop as the vhost-user back-end of a DPDK virtio-user front-end,
# bridging it to a TAP, against DPDK's own back-end (testpmd with net_vhost + net_tap in io forward) on the
# same front-end, in the same run, interleaved: each of ROUNDS rounds starts one back-end, connects a fresh
# front-end, measures the four figures below, stops both, then does the same with the other back-end (the
# order alternates between rounds), so drift on a shared machine hits both alike.
#
# The front-end is dpdk-testpmd with --vdev net_virtio_user0,path=SOCK,queues=1 (--no-huge, so its memory
# is a memfd: see tests/tools/memfdseal, preloaded into the front-end for both back-ends), driven through
# its interactive prompt. For 64 and 1500-byte frames (Ethernet header included, no FCS):
#   fe_to_tap: front-end `set fwd txonly` + `set txpkts SIZE` (as fast as it can); figure = packets/s the
#     kernel received on the back-end's TAP: the TAP's rx_packets (frames the back-end wrote into it) over
#     SECONDS, after WARMUP seconds. The TAP is up, without addresses; the frames (to 02:00:00:00:00:00,
#     UDP 198.18.0.1 → 198.18.0.2) are dropped by the kernel's IP layer as not ours, identically for both.
#   tap_to_fe: front-end `set fwd rxonly`; tests/tools/tapgen floods the TAP from inside its namespace (one
#     thread, AF_PACKET with PACKET_QDISC_BYPASS, sendmmsg of 64 frames) for WARMUP + SECONDS; figure =
#     packets/s the front-end received (its port's RX-packets from `show port stats 0`, taken at both ends of
#     the SECONDS interval). Beside it: what the back-end read from the TAP (TAP tx_packets), what the TAP
#     dropped because the back-end did not read it in time (TAP tx_dropped), and their sum: what tapgen
#     offered.
# CPU placement (2 CPUs; FE_CPU=0 and BE_CPU=1 by default): the front-end (both its lcores: --lcores
# 0@FE,1@FE, and its control threads: taskset) on FE_CPU, the guest's CPU. The back-end — vop (taskset, all
# threads) or DPDK's testpmd (--lcores 0@BE,1@BE, taskset) — on BE_CPU, together with everything on the
# host's side of the TAP: the kernel's receive path runs in the back-end's write() and tapgen runs there too
# (GEN_CPU, default BE_CPU). Note DPDK's back-end busy-polls BE_CPU, so in tap_to_fe it shares the CPU with
# tapgen half and half whether or not it has work, while vop sleeps when the TAP is empty.
# CPU figures: user+system time of the back-end process (all threads) over the SECONDS interval, in % of one
# CPU; the same for the front-end (a busy-polling testpmd: below ~100 % means other load took its CPU).
# For vop the script also prints per-queue counters (vop status -j over each measurement: packets per
# batch, doorbells and drops) so a shortfall says where it is.
#
# Figures: medians over rounds, `NAME_range=min..max`; `vop_vs_dpdk_*` is vop / DPDK taken within each
# round, then the median. Not a test: prints name=value lines and rewrites the vhostuser.sh section of
# docs/benchmarks.md. Needs root, 2 CPUs, a C compiler, taskset, python3; installs dpdk-dev with apt-get
# when dpdk-testpmd is missing.
#   tests/bench/vhostuser.sh [SECONDS [ROUNDS]]      (defaults 10 and $ROUNDS or 3; WARMUP=2 s)
# VOP_BINARY=/abs/path/vop measures that native binary; otherwise artifacts/RID/vop, published first when
# it is missing or older than the sources. KEEP=1 keeps the logs (both testpmds', vop's) in /tmp;
# BACKENDS=vop or BACKENDS=dpdk measures one back-end only (no ratios; for debugging). VOP_POLL=busy (or
# sleep) sets vop's link key "poll" (default: vop's own, adaptive); busy makes vop spin like DPDK does.
set -euo pipefail
cd "$(dirname "$0")/../.."
T=${1:-10}
ROUNDS=${2:-${ROUNDS:-3}}
WARMUP=${WARMUP:-2}
FE_CPU=${FE_CPU:-0}
BE_CPU=${BE_CPU:-1}
GEN_CPU=${GEN_CPU:-$BE_CPU}
[[ $T =~ ^[1-9][0-9]*$ ]] || { echo "vhostuser.sh: SECONDS must be a positive integer" >&2; exit 1; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "vhostuser.sh: ROUNDS must be a positive integer" >&2; exit 1; }
[[ $WARMUP =~ ^[0-9]+$ ]] || { echo "vhostuser.sh: WARMUP must be a whole number of seconds" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "vhostuser.sh: needs root" >&2; exit 1; }
(($(nproc) >= 2)) || { echo "vhostuser.sh: needs 2 CPUs (the front-end busy-polls one)" >&2; exit 1; }
for c in ip python3 taskset stdbuf; do command -v $c >/dev/null || { echo "vhostuser.sh: $c is missing" >&2; exit 1; }; done
CC=
for c in cc gcc clang; do command -v $c >/dev/null && { CC=$c; break; }; done
[[ -n $CC ]] || { echo "vhostuser.sh: no C compiler (cc, gcc or clang) for tests/tools/tapgen and memfdseal" >&2; exit 1; }
if ! command -v dpdk-testpmd >/dev/null; then
    echo "vhostuser.sh: installing dpdk-dev (dpdk-testpmd) with apt-get ..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q dpdk-dev >/dev/null ||
        { echo "vhostuser.sh: apt-get install dpdk-dev failed" >&2; exit 1; }
fi
case $(uname -m) in x86_64) RID=linux-x64 ;; aarch64) RID=linux-arm64 ;; *) echo "vhostuser.sh: no RID for $(uname -m)" >&2; exit 1 ;; esac
AOT=${VOP_BINARY:-$PWD/artifacts/$RID/vop}

ID=vopvh$$
DIR=$(mktemp -d /tmp/vop-vhostuser-bench.XXXXXX)
BE=      # the back-end that is up (vop or DPDK's testpmd), if any
FE=      # the front-end testpmd, if any
GEN=     # tapgen, if running
cleanup() {
    exec 7>&-
    for p in $GEN $FE $BE; do kill "$p" 2>/dev/null || true; done
    sleep 1
    for p in $GEN $FE $BE; do kill -9 "$p" 2>/dev/null || true; done
    for ns in $ID-v $ID-d; do ip netns del $ns 2>/dev/null || true; done
    rm -rf /dev/shm/$ID-* /var/run/dpdk/$ID-*
    if [[ -n ${KEEP:-} ]]; then echo "vhostuser.sh: logs kept in $DIR" >&2; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
if [[ -z ${VOP_BINARY:-} ]] && { [[ ! -x $AOT ]] || [[ -n $(find appliance netstack links metrics Directory.*.props \
        \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' \) -newer "$AOT" -not -path '*/obj/*' -not -path '*/bin/*' -print -quit) ]]; }; then
    echo "vhostuser.sh: publishing the native binary (deploy/publish.sh $RID) ..." >&2
    AOT=$(deploy/publish.sh $RID 2>"$DIR/publish.log") || { cat "$DIR/publish.log" >&2; exit 1; }
fi
[[ -x $AOT ]] || { echo "vhostuser.sh: no native vop at $AOT" >&2; exit 1; }
$CC -O2 -o "$DIR/tapgen" tests/tools/tapgen/tapgen.c 2>"$DIR/cc.log" &&
    $CC -O2 -shared -fPIC -o "$DIR/memfdseal.so" tests/tools/memfdseal/memfdseal.c 2>>"$DIR/cc.log" ||
    { echo "vhostuser.sh: $CC could not build tests/tools/tapgen or tests/tools/memfdseal" >&2; cat "$DIR/cc.log" >&2; exit 1; }
# One namespace per back-end, IPv6 off so the kernel sends nothing of its own through the TAP.
for ns in $ID-v $ID-d; do
    ip netns add $ns; ip -n $ns link set lo up
    ip netns exec $ns sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
TAPV=vhv$$; TAPD=vhd$$   # vop's TAP in $ID-v, net_tap's in $ID-d
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15}' /proc/$1/stat; }
now_ns() { date +%s%N; }
die() { echo "vhostuser.sh: $*" >&2; for f in "$DIR"/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done; exit 1; }
# TAP counters: NS TAP -> "rx_packets tx_packets tx_dropped"
tapstat() {
    ip netns exec "$1" sh -c "cd /sys/class/net/$2/statistics && echo \$(cat rx_packets tx_packets tx_dropped)"
}

# The back-ends. Each listens on its own socket; the front-end connects.
start_vop() {
    cat >"$DIR/vop.json" <<JSON
{ "runDir": "$DIR/run", "metrics": { "listen": "off" },
  "links": [ { "name": "vm0", "kind": "vhost-user", "socket": "$DIR/vop.sock"${VOP_POLL:+, \"poll\": \"$VOP_POLL\"},
    "devices": [ { "type": "net", "name": "net0", "tap": "$TAPV", "mtu": 1500 } ] } ] }
JSON
    rm -f "$DIR/vop.sock"
    ip netns exec $ID-v taskset -c $BE_CPU "$AOT" run --config "$DIR/vop.json" >>"$DIR/vop.log" 2>&1 & BE=$!
    for i in $(seq 1000); do [[ -S $DIR/vop.sock ]] && break; kill -0 $BE 2>/dev/null || break; sleep 0.01; done
    [[ -S $DIR/vop.sock ]] || die "vop did not listen on $DIR/vop.sock"
}
start_dpdk() {
    rm -f "$DIR/dpdk.sock"
    ip netns exec $ID-d taskset -c $BE_CPU stdbuf -oL dpdk-testpmd --lcores "0@$BE_CPU,1@$BE_CPU" --main-lcore 0 --no-pci --no-huge -m 1024 \
        --file-prefix=$ID-be --vdev "net_vhost0,iface=$DIR/dpdk.sock,queues=1" --vdev "net_tap0,iface=$TAPD" -- \
        --total-num-mbufs=32768 --forward-mode=io --nb-cores=1 --auto-start --stats-period 3600 \
        </dev/null >>"$DIR/dpdk-backend.log" 2>&1 & BE=$!
    for i in $(seq 6000); do [[ -S $DIR/dpdk.sock ]] && grep -q 'Start automatic packet forwarding\|io packet forwarding' "$DIR/dpdk-backend.log" && break
        kill -0 $BE 2>/dev/null || break; sleep 0.01; done
    [[ -S $DIR/dpdk.sock ]] || die "DPDK's back-end did not listen on $DIR/dpdk.sock"
}
stop_backend() {
    kill $BE 2>/dev/null || true
    for i in $(seq 500); do kill -0 $BE 2>/dev/null || break; sleep 0.01; done
    kill -9 $BE 2>/dev/null || true; wait $BE 2>/dev/null || true
    BE=
}

# The front-end: testpmd on FE_CPU reading commands from a FIFO (fd 7).
start_fe() {   # SOCK
    rm -f "$DIR/fe.fifo"; mkfifo "$DIR/fe.fifo"
    : >"$DIR/fe.log"
    LD_PRELOAD=$DIR/memfdseal.so taskset -c $FE_CPU stdbuf -oL dpdk-testpmd --lcores "0@$FE_CPU,1@$FE_CPU" --main-lcore 0 --no-pci --no-huge -m 1024 \
        --file-prefix=$ID-fe --vdev "net_virtio_user0,path=$1,queues=1" -- -i \
        --total-num-mbufs=32768 --nb-cores=1 <"$DIR/fe.fifo" >>"$DIR/fe.log" 2>&1 & FE=$!
    exec 7>"$DIR/fe.fifo"
    for i in $(seq 6000); do grep -q 'testpmd>' "$DIR/fe.log" && break; kill -0 $FE 2>/dev/null || break; sleep 0.01; done
    grep -q 'testpmd>' "$DIR/fe.log" || die "the front-end testpmd did not start"
}
fe() { echo "$*" >&7; }
# Front-end port counters: -> "rx_packets tx_packets" (waits for the printout of `show port stats 0`)
fe_stats() {
    local n i
    n=$(grep -c 'Tx-pps:' "$DIR/fe.log" || true)
    fe show port stats 0
    for i in $(seq 500); do (($(grep -c 'Tx-pps:' "$DIR/fe.log" || true) > n)) && break; sleep 0.01; done
    tac "$DIR/fe.log" | awk '/TX-packets:/ && !tx {tx=$2} /RX-packets:/ && !rx {rx=$2} rx && tx {print rx, tx; exit}'
}
stop_fe() {
    fe quit
    exec 7>&-
    for i in $(seq 500); do kill -0 $FE 2>/dev/null || break; sleep 0.01; done
    kill $FE 2>/dev/null || true; wait $FE 2>/dev/null || true
    FE=
}
vop_status() { "$AOT" status --run-dir "$DIR/run" -j --interval 0.1 2>/dev/null || echo '{}'; }
# One figure of round $R: BACKEND KEY VALUE.
rec() { echo "$R $1 $2 $3" >>"$DIR/raw"; }

# One back-end for one round: B (vop or dpdk).
measure() {
    local B=$1 ns tap sock s
    if [[ $B == vop ]]; then start_vop; ns=$ID-v; tap=$TAPV; sock=$DIR/vop.sock; else start_dpdk; ns=$ID-d; tap=$TAPD; sock=$DIR/dpdk.sock; fi
    start_fe "$sock"
    # Wait until the path carries frames: the TAP is up and a txonly burst reaches it.
    for i in $(seq 500); do ip -n $ns link show $tap 2>/dev/null | grep -q LOWER_UP && break; sleep 0.01; done
    ip -n $ns link set $tap up
    fe set fwd txonly; fe set txpkts 64; fe start
    local r0 r1 ok=
    r0=$(tapstat $ns $tap | cut -d' ' -f1)
    for i in $(seq 100); do sleep 0.05; r1=$(tapstat $ns $tap | cut -d' ' -f1); ((r1 > r0 + 1000)) && { ok=1; break; }; done
    fe stop
    [[ -n $ok ]] || die "$B: no frames reached TAP $tap from the front-end"

    local a0 a1 b0 b1 c0 c1 t0 t1 st0 st1 rx0 tx0 rx1 tx1 d0 d1 x0 x1 secs
    for s in 64 1500; do
        # Front-end → TAP.
        fe set txpkts $s; fe start
        sleep "$WARMUP"
        if [[ $B == vop ]]; then vop_status >"$DIR/st0"; fi
        read -r a0 b0 c0 < <(tapstat $ns $tap); x0=$(cpu_ticks $BE); y0=$(cpu_ticks $FE); t0=$(now_ns)
        sleep "$T"
        read -r a1 b1 c1 < <(tapstat $ns $tap); x1=$(cpu_ticks $BE); y1=$(cpu_ticks $FE); t1=$(now_ns)
        if [[ $B == vop ]]; then vop_status >"$DIR/st1"; fi
        fe stop
        secs=$(python3 -c "print(($t1 - $t0) / 1e9)")
        rec $B fe_to_tap_${s}_pps "$(python3 -c "print(($a1 - $a0) / $secs)")"
        rec $B fe_to_tap_${s}_cpu_percent "$(python3 -c "print(($x1 - $x0) * 100 / $HZ / $secs)")"
        rec $B fe_to_tap_${s}_frontend_cpu_percent "$(python3 -c "print(($y1 - $y0) * 100 / $HZ / $secs)")"
        if [[ $B == vop ]]; then vopq fe_to_tap_$s tx0; fi
        # TAP → front-end.
        fe set fwd rxonly; fe start
        ip netns exec $ns taskset -c $GEN_CPU "$DIR/tapgen" $tap $s $((WARMUP + T + 1)) >"$DIR/gen.out" 2>>"$DIR/tapgen.log" & GEN=$!
        sleep "$WARMUP"
        if [[ $B == vop ]]; then vop_status >"$DIR/st0"; fi
        read -r a0 b0 c0 < <(tapstat $ns $tap); read -r rx0 tx0 < <(fe_stats); x0=$(cpu_ticks $BE); y0=$(cpu_ticks $FE); t0=$(now_ns)
        sleep "$T"
        read -r a1 b1 c1 < <(tapstat $ns $tap); read -r rx1 tx1 < <(fe_stats); x1=$(cpu_ticks $BE); y1=$(cpu_ticks $FE); t1=$(now_ns)
        if [[ $B == vop ]]; then vop_status >"$DIR/st1"; fi
        wait $GEN 2>/dev/null || true; GEN=
        fe stop
        fe set fwd txonly
        secs=$(python3 -c "print(($t1 - $t0) / 1e9)")
        rec $B tap_to_fe_${s}_pps "$(python3 -c "print(($rx1 - $rx0) / $secs)")"
        rec $B tap_to_fe_${s}_backend_read_pps "$(python3 -c "print(($b1 - $b0) / $secs)")"
        rec $B tap_to_fe_${s}_tap_dropped_pps "$(python3 -c "print(($c1 - $c0) / $secs)")"
        rec $B tap_to_fe_${s}_tapgen_offered_pps "$(python3 -c "print(($b1 - $b0 + $c1 - $c0) / $secs)")"
        rec $B tap_to_fe_${s}_cpu_percent "$(python3 -c "print(($x1 - $x0) * 100 / $HZ / $secs)")"
        rec $B tap_to_fe_${s}_frontend_cpu_percent "$(python3 -c "print(($y1 - $y0) * 100 / $HZ / $secs)")"
        if [[ $B == vop ]]; then vopq tap_to_fe_$s rx0; fi
    done
    stop_fe
    stop_backend
}
# vop's counters of QUEUE (tx0: front-end → TAP, rx0: TAP → front-end) between the snapshots st0 and st1:
# packets per batch, doorbells (kicks received) and interrupts sent per 1000 packets, drops per second.
vopq() {
    python3 - "$DIR/st0" "$DIR/st1" "$2" <<'PY' | while read -r k v; do rec vop "$1_vop_$k" "$v"; done
import json, sys
def q(path, name):
    try:
        for d in json.load(open(path))["daemons"]:
            for l in d["links"]:
                for dev in l["devices"]:
                    for qq in dev["queues"]:
                        if qq["name"] == name: return qq
    except Exception: pass
    return None
a, b = q(sys.argv[1], sys.argv[3]), q(sys.argv[2], sys.argv[3])
if a and b:
    p = b["packets"] - a["packets"]
    print("packets_per_batch", p / max(b["batches"] - a["batches"], 1))
    print("doorbells_per_1000_packets", 1000 * (b["doorbells"] - a["doorbells"]) / max(p, 1))
    print("notifications_per_1000_packets", 1000 * (b["notifications_sent"] - a["notifications_sent"]) / max(p, 1))
    drops = sum(b["drops"].values()) - sum(a["drops"].values())
    print("drops", drops)
    if drops: print("drops_by_reason", ",".join(f"{k}:{v - a['drops'].get(k, 0)}" for k, v in b["drops"].items()))
PY
}

: >"$DIR/raw"
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
for ((R = 1; R <= ROUNDS; R++)); do
    if ((R % 2)); then order="vop dpdk"; else order="dpdk vop"; fi
    echo "vhostuser.sh: round $R of $ROUNDS: $order ..." >&2
    for b in $order; do if [[ " ${BACKENDS:-vop dpdk} " == *" $b "* ]]; then measure $b; fi; done
done
cat >"$DIR/env" <<ENV
rounds=$ROUNDS
seconds_per_measurement=$T
warmup_seconds=$WARMUP
frontend_cpu=$FE_CPU
backend_cpu=$BE_CPU
tapgen_cpu=$GEN_CPU
cpus=$(nproc)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
load_average_1min_at_start=$LOAD_START
load_average_1min_at_end=$(cut -d' ' -f1 /proc/loadavg)
dpdk=$(dpkg-query -W -f '${Version}' dpdk-dev 2>/dev/null || echo unknown)
vop_binary=$AOT
vop_commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
vop_poll=${VOP_POLL:-default}
ENV

# Medians over rounds, ranges, per-round ratios: the name=value lines.
python3 - "$DIR/raw" "$DIR/env" >"$DIR/figures" <<'PY'
import sys, statistics
raw = {}
for line in open(sys.argv[1]):
    r, b, k, v = line.split(maxsplit=3)
    raw.setdefault((b, k), {})[int(r)] = v.strip()
env = [l.rstrip("\n") for l in open(sys.argv[2]) if "=" in l]
def num(d): return {r: float(v) for r, v in d.items()}
def emit(name, values, digits):
    if not values: return
    f = (lambda x: f"{x:.{digits}f}") if digits else (lambda x: str(int(round(x))))
    print(f"{name}={f(statistics.median(values))}")
    print(f"{name}_range={f(min(values))}..{f(max(values))}")
for d in ("fe_to_tap", "tap_to_fe"):
    for s in ("64", "1500"):
        k = f"{d}_{s}"
        v, p = num(raw.get(("vop", k + "_pps"), {})), num(raw.get(("dpdk", k + "_pps"), {}))
        emit(f"vop_{k}_pps", list(v.values()), 0)
        emit(f"dpdk_{k}_pps", list(p.values()), 0)
        emit(f"vop_vs_dpdk_{k}", [v[r] / p[r] for r in v if r in p and p[r]], 2)
        for b in ("vop", "dpdk"):
            c = num(raw.get((b, k + "_cpu_percent"), {}))
            emit(f"{b}_{k}_cpu_percent", list(c.values()), 0)
            pps = num(raw.get((b, k + "_pps"), {}))
            # Packets per second of back-end CPU time: comparable when other load steals CPU (a busy-polling
            # back-end counts its empty polls too).
            emit(f"{b}_{k}_pps_per_backend_cpu", [pps[r] * 100 / c[r] for r in pps if r in c and c[r] > 0], 0)
            # The front-end's CPU: below ~100 % means other load took part of its CPU.
            emit(f"{b}_{k}_frontend_cpu_percent", list(num(raw.get((b, k + "_frontend_cpu_percent"), {})).values()), 0)
        if d == "tap_to_fe":
            for b in ("vop", "dpdk"):
                for x in ("tapgen_offered_pps", "backend_read_pps", "tap_dropped_pps"):
                    emit(f"{b}_{k}_{x}", list(num(raw.get((b, f"{k}_{x}"), {})).values()), 0)
        for x, digits in (("packets_per_batch", 1), ("doorbells_per_1000_packets", 1), ("notifications_per_1000_packets", 1), ("drops", 0)):
            emit(f"vop_{k}_vop_{x}", list(num(raw.get(("vop", f"{k}_vop_{x}"), {})).values()), digits)
        reasons = raw.get(("vop", f"{k}_vop_drops_by_reason"), {})
        if reasons: print(f"vop_{k}_vop_drops_by_reason=" + " ".join(f"r{r}:{reasons[r]}" for r in sorted(reasons)))
for l in env: print(l)
PY
cat "$DIR/figures"

# Rewrite the vhostuser.sh section of docs/benchmarks.md (not after a one-back-end run).
[[ -z ${BACKENDS:-} ]] || exit 0
python3 - "$DIR/figures" <<'PY'
import sys, re, datetime, textwrap
figs = open(sys.argv[1]).read().strip()
f = dict(l.split("=", 1) for l in figs.splitlines())
def mr(name, unit=1, digits=0):
    if name not in f: return "–"
    lo, hi = f[name + "_range"].split("..")
    fmt = (lambda x: f"{float(x) / unit:.{digits}f}")
    return f"{fmt(f[name])} ({fmt(lo)}–{fmt(hi)})" if lo != hi else fmt(f[name])
rows = []
for d, label in (("fe_to_tap", "front-end → TAP"), ("tap_to_fe", "TAP → front-end")):
    for s in ("64", "1500"):
        k = f"{d}_{s}"
        rows.append(f"| {label}, {s} B, Mpps | {mr(f'vop_{k}_pps', 1e6, 3)} | {mr(f'dpdk_{k}_pps', 1e6, 3)} | "
                    f"**{mr(f'vop_vs_dpdk_{k}', 1, 2)}** | {mr(f'vop_{k}_cpu_percent')} | {mr(f'dpdk_{k}_cpu_percent')} | "
                    f"{f.get(f'vop_{k}_frontend_cpu_percent', '–')} / {f.get(f'dpdk_{k}_frontend_cpu_percent', '–')} |")
table = ("| | vop back-end | DPDK net_vhost + net_tap | vop / DPDK | CPU vop, % | CPU DPDK, % | front-end CPU, % (vop / DPDK runs) |\n"
         "|---|---|---|---|---|---|---|\n" + "\n".join(rows))
poll = "" if f.get("vop_poll", "default") == "default" else f"VOP_POLL={f['vop_poll']} "
text = f"""Command: `sudo {poll}tests/bench/vhostuser.sh {f['seconds_per_measurement']} {f['rounds']}` (run of
{datetime.date.today()}, vop {f['vop_commit']} with poll {f.get('vop_poll', 'default')}, DPDK {f['dpdk']}; {f['cpus']} CPUs
({f['cpu_model']}), 1-minute load average {f['load_average_1min_at_start']} at the start and
{f['load_average_1min_at_end']} at the end). Front-end on CPU {f['frontend_cpu']}, back-end on CPU {f['backend_cpu']},
tapgen on CPU {f['tapgen_cpu']}; {f['rounds']} round(s), the back-ends' order alternating; each rate over
{f['seconds_per_measurement']} s after {f['warmup_seconds']} s of warm-up. Rates are medians over the rounds with min–max in
brackets, vop / DPDK is taken within each round, CPU is the back-end process's user+system time in % of one
CPU."""
fcpu = [float(v) for k, v in f.items() if k.endswith("_frontend_cpu_percent")]
if fcpu and min(fcpu) < 90:
    text += f""" **Disturbed run:** the busy-polling front-end got as little as {min(fcpu):.0f} % of its CPU in some
measurement (other load on the machine), so the rates below are bounded by that load, not by the back-ends."""
text = textwrap.fill(" ".join(text.split()), width=110, break_on_hyphens=False)
body = f"""<!-- vhostuser.sh begin -->
{text}

{table}

```
{figs}
```
<!-- vhostuser.sh end -->"""
doc = open("docs/benchmarks.md").read()
if "<!-- vhostuser.sh begin -->" in doc:
    doc = re.sub(r"<!-- vhostuser.sh begin -->.*<!-- vhostuser.sh end -->", lambda m: body, doc, flags=re.S)
else:
    doc += "\n## vhost-user back-end: vop vs DPDK's net_vhost + net_tap (issue 15)\n\n" + body + "\n"
open("docs/benchmarks.md", "w").write(doc)
PY
