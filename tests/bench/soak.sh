#!/usr/bin/env bash
# Soak benchmark: a loopback vop pair (device side "host" in one namespace, driver side "card" in
# another) under iperf3 TCP traffic for MINUTES, while one side is SIGKILLed and restarted at random
# intervals and hostile sessions (tests/tools/Vop.HostilePeer: an extra ivshmem client, a client that
# truncates the shared memory) are interleaved. First half: only the card is killed and the host daemon's
# growth (RssAnon, open fds) is measured; second half: only the host is killed and the card's growth is
# measured. A kill or hostile session counts as recovered when ping crosses again within 60 s.
# Not a test: prints one name=value line per figure; exits 1 if anything did not recover or a daemon
# died without being killed (the daemon logs are then kept and their directory printed).
#   tests/bench/soak.sh MINUTES          (SOAK_SEED=N to repeat a schedule)
set -uo pipefail   # no -e: failures are counted, not fatal
cd "$(dirname "$0")/../.."
M=${1:-}
[[ $M =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "usage: tests/bench/soak.sh MINUTES" >&2; exit 2; }
TOTAL=$(awk "BEGIN { printf \"%d\", $M * 60 }")
((TOTAL >= 60)) || { echo "soak.sh: run at least 1 minute (two halves with a 20 s warm-up each)" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "soak.sh: needs root" >&2; exit 1; }
for c in iperf3 ping ip timeout; do command -v $c >/dev/null || { echo "soak.sh: $c is missing" >&2; exit 1; }; done
./vop --help >/dev/null || exit 1   # build the appliance if needed
HP_DLL=tests/tools/Vop.HostilePeer/bin/Release/net10.0/Vop.HostilePeer.dll
dotnet build tests/tools/Vop.HostilePeer -c Release -v quiet -nologo >/dev/null 2>&1 || [[ -f $HP_DLL ]] ||
    { echo "soak.sh: tests/tools/Vop.HostilePeer does not build" >&2; exit 1; }
DLL=appliance/Vop.Appliance/bin/Release/net10.0/vop.dll
# VOP_BINARY (an absolute path) runs the native AOT vop instead of the JIT build, as the tests do.
if [[ -n ${VOP_BINARY:-} ]]; then VOP=("$VOP_BINARY"); else VOP=(dotnet "$DLL"); fi

SEED=${SOAK_SEED:-$RANDOM}
RANDOM=$SEED
echo "seed=$SEED"
HALF=$((TOTAL / 2))
WARMUP=20
RECOVERY_S=60
RUN_S=5                         # seconds per iperf3 run
HOST_IP=10.182.0.1 CARD_IP=10.182.0.2
ID=vopsoak$$
DIR=$(mktemp -d /tmp/vop-soak.XXXXXX)
HOST_PID= CARD_PID= TRAFFIC_PID= FAILED=0
ev() { echo "soak: $(($(date +%s) - T0))s $*" | tee -a "$DIR/events.log" >&2; }

cleanup() {
    trap - EXIT INT TERM
    touch "$DIR/stop"
    [[ -n $TRAFFIC_PID ]] && kill "$TRAFFIC_PID" 2>/dev/null
    [[ -f $DIR/iperf-server.pid ]] && kill "$(cat "$DIR/iperf-server.pid")" 2>/dev/null
    for p in $HOST_PID $CARD_PID; do kill "$p" 2>/dev/null; done
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        alive "$HOST_PID" || alive "$CARD_PID" || break
        sleep 0.5
    done
    for p in $HOST_PID $CARD_PID; do kill -9 "$p" 2>/dev/null; done
    # Anything else still inside our namespaces (an iperf3 cut off mid-run) was started by us.
    for ns in $ID-h $ID-c; do
        for p in $(ip netns pids $ns 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del $ns 2>/dev/null
    done
    wait 2>/dev/null
    if ((FAILED)); then
        rm -f "$DIR/link.sock"
        echo "soak.sh: daemon logs kept in $DIR (host.log, card.log, hostile.log, events.log)" >&2
    else
        rm -rf "$DIR"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # Ctrl-C: clean up everything, logs included

# A process counts as alive until it is reaped or a zombie (kill -0 succeeds on zombies).
alive() { [[ -n $1 && -r /proc/$1/status ]] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
rss_anon() { awk '/RssAnon/ {print $2}' "/proc/$1/status" 2>/dev/null; }
fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

for ns in $ID-h $ID-c; do ip netns add $ns; ip -n $ns link set lo up; done
cat >"$DIR/host.json" <<JSON
{ "links": [ { "name": "card0", "role": "device", "socket": "$DIR/link.sock", "windowSize": "64M", "runDir": "$DIR/run-h",
  "devices": [ { "type": "net", "tap": "vsh", "mac": "52:54:00:5a:00:01", "mtu": 1500 } ] } ] }
JSON
cat >"$DIR/card.json" <<JSON
{ "links": [ { "name": "host", "role": "driver", "socket": "$DIR/link.sock", "runDir": "$DIR/run-c",
  "devices": [ { "type": "net", "tap": "vsc" } ] } ] }
JSON
start_host() {
    echo "=== start $(date +%T)" >>"$DIR/host.log"
    ip netns exec $ID-h "${VOP[@]}" run --config "$DIR/host.json" >>"$DIR/host.log" 2>&1 &
    HOST_PID=$!
}
start_card() {
    echo "=== start $(date +%T)" >>"$DIR/card.log"
    ip netns exec $ID-c "${VOP[@]}" run --config "$DIR/card.json" >>"$DIR/card.log" 2>&1 &
    CARD_PID=$!
}
# A restarted side has a fresh TAP: give it its address again (replace is a no-op when it is there).
addresses() {
    ip -n $ID-h link show vsh >/dev/null 2>&1 && ip -n $ID-h addr replace $HOST_IP/24 dev vsh 2>/dev/null
    ip -n $ID-c link show vsc >/dev/null 2>&1 && ip -n $ID-c addr replace $CARD_IP/24 dev vsc 2>/dev/null
    return 0
}
# Waits until ping crosses; prints the seconds since T_MS (the disturbance); fails after RECOVERY_S.
recovered() {
    local since=$1 deadline=$(($1 + RECOVERY_S * 1000))
    while (($(now_ms) < deadline)); do
        addresses
        if ip netns exec $ID-h ping -c 1 -W 1 $CARD_IP >/dev/null 2>&1; then
            awk "BEGIN { printf \"%.1f\", ($(now_ms) - $since) / 1000 }"
            return 0
        fi
        sleep 0.2
    done
    return 1
}

T0=$(date +%s)
start_host
start_card
if ! recovered "$(now_ms)" >/dev/null; then
    FAILED=1
    echo "soak.sh: the link did not come up" >&2
    exit 1
fi

# iperf3 TCP in short runs, alternating direction, until told to stop; one line per run.
traffic() {
    local n=0 out gbit rev
    while [[ ! -e $DIR/stop ]]; do
        n=$((n + 1))
        ip netns exec $ID-h iperf3 -s -1 >/dev/null 2>&1 &
        echo $! >"$DIR/iperf-server.pid"
        sleep 0.3
        rev=$( ((n % 2 == 0)) && echo -R)   # every other run host to card
        out=$(timeout $((RUN_S + 20)) ip netns exec $ID-c iperf3 -c $HOST_IP -t $RUN_S --connect-timeout 3000 -J $rev 2>/dev/null)
        kill "$(cat "$DIR/iperf-server.pid")" 2>/dev/null
        wait 2>/dev/null
        gbit=$(echo "$out" | python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))' 2>/dev/null)
        if [[ -n $gbit ]] && awk "BEGIN { exit !($gbit > 0) }"; then
            echo "ok $gbit" >>"$DIR/iperf.runs"
        else
            echo "fail" >>"$DIR/iperf.runs"
            sleep 1
        fi
    done
}
traffic &
TRAFFIC_PID=$!

# The whole schedule comes from the seed up front: gaps before each kill and each hostile session.
KILL_GAPS=() HOSTILE_GAPS=()
for ((i = 0; i < TOTAL / 5 + 2; i++)); do KILL_GAPS+=($((5 + RANDOM % 26))); done
for ((i = 0; i < TOTAL / 5 + 2; i++)); do HOSTILE_GAPS+=($((5 + RANDOM % 26))); done
KI=0 HI=0

declare -A KILLS=() RECOVERED=() RTIMES=() UNEXPECTED=() GROWTH_RSS=() GROWTH_FD=()
for s in host card; do KILLS[$s]=0; RECOVERED[$s]=0; RTIMES[$s]=""; UNEXPECTED[$s]=0; done
HOSTILE=0 HOSTILE_DISTURBED=0 HOSTILE_UNRECOVERED=0 SECOND_ADMITTED=0 TRUNCATE_OK=0 TRUNCATE_REFUSED=0
pid_of() { if [[ $1 == host ]]; then echo "$HOST_PID"; else echo "$CARD_PID"; fi; }
start_side() { if [[ $1 == host ]]; then start_host; else start_card; fi; }

# Daemons that died without being killed (a hostile session crashed them): count them, restart them
# all, then wait for the link. Sets DIED to how many; fails when the link does not come back.
DIED=0
check_unexpected() {
    local s pid rc t r dead=""
    DIED=0
    for s in host card; do
        pid=$(pid_of $s)
        if ! alive "$pid"; then
            wait "$pid" 2>/dev/null
            rc=$?
            dead+="$s (status $rc) "
            UNEXPECTED[$s]=$((UNEXPECTED[$s] + 1))
            DIED=$((DIED + 1))
        fi
    done
    ((DIED)) || return 0
    FAILED=1
    t=$(now_ms)
    for s in host card; do alive "$(pid_of $s)" || start_side $s; done
    if r=$(recovered "$t"); then
        ev "exited by itself: ${dead}- restarted, link back after ${r}s"
        return 0
    fi
    ev "exited by itself: ${dead}- restarted, link NOT back within ${RECOVERY_S}s"
    return 1
}

# SIGKILL one side, restart it, wait for ping. $1 = the side killed; counted as a kill of its peer.
kill_side() {
    local victim=$1 peer pid t r
    peer=$([[ $victim == card ]] && echo host || echo card)
    pid=$(pid_of "$victim")
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    local also=""
    if [[ $victim == card ]] && ((KILLS[$peer] % 2 == 1)); then
        # The host has no client now, so truncate-shm is admitted and meets the memfd's seals.
        sleep 0.5
        attack truncate-shm
        also=" (truncate-shm as the only client meanwhile: ${WHAT% })"
        sleep 1
        if ! alive "$HOST_PID"; then
            wait "$HOST_PID" 2>/dev/null
            UNEXPECTED[host]=$((UNEXPECTED[host] + 1))
            FAILED=1
            also+=" which crashed the host"
            start_host
        fi
    fi
    # Recovery is timed from the restart (the same instant as the kill unless a session ran between).
    t=$(now_ms)
    start_side "$victim"
    KILLS[$peer]=$((KILLS[$peer] + 1))
    if r=$(recovered "$t"); then
        RECOVERED[$peer]=$((RECOVERED[$peer] + 1))
        RTIMES[$peer]+="$r "
        ev "killed $victim (pid $pid)$also, restarted, link back after ${r}s"
    else
        FAILED=1
        ev "killed $victim (pid $pid)$also, restarted, link NOT back within ${RECOVERY_S}s"
    fi
}

# One session of the hostile peer against the link socket; WHAT = the facts it reported, on one line.
WHAT=
attack() {
    local out="$DIR/hostile.out"
    HOSTILE=$((HOSTILE + 1))
    if [[ $1 == second-client ]]; then
        timeout 30 dotnet $HP_DLL second-client --socket "$DIR/link.sock" --hold-ms 2000 >"$out" 2>&1
        grep -q '^admitted=[1-9]' "$out" && SECOND_ADMITTED=$((SECOND_ADMITTED + 1))
    else
        timeout 30 dotnet $HP_DLL truncate-shm --socket "$DIR/link.sock" --size 4096 >"$out" 2>&1
        grep -q '^truncate=ok' "$out" && TRUNCATE_OK=$((TRUNCATE_OK + 1))
        grep -q '^truncate=refused' "$out" && TRUNCATE_REFUSED=$((TRUNCATE_REFUSED + 1))
    fi
    { echo "=== session $HOSTILE: $1 $(date +%T)"; cat "$out"; } >>"$DIR/hostile.log"
    WHAT="$1 $(grep -E '^(admitted|doorbells_seen|seals|truncate)=' "$out" | tr '\n' ' ')"
}

# A scheduled hostile session (the two attacks in turn, as an extra client), then a recovery check.
NEXT_ATTACK=0
hostile() {
    local t r what
    t=$(now_ms)
    if ((NEXT_ATTACK++ % 2 == 0)); then attack second-client; else attack truncate-shm; fi
    what=$WHAT
    sleep 1
    if check_unexpected && ((DIED == 0)) && ip netns exec $ID-h ping -c 1 -W 2 $CARD_IP >/dev/null 2>&1; then
        ev "hostile session $HOSTILE: ${what}link undisturbed"
        return
    fi
    HOSTILE_DISTURBED=$((HOSTILE_DISTURBED + 1))
    if ((DIED)); then
        # check_unexpected already restarted the crashed daemons and waited for the link.
        alive "$HOST_PID" && alive "$CARD_PID" && ip netns exec $ID-h ping -c 1 -W 2 $CARD_IP >/dev/null 2>&1 ||
            HOSTILE_UNRECOVERED=$((HOSTILE_UNRECOVERED + 1))
        ev "hostile session $HOSTILE: ${what}crashed $DIED daemon(s)"
    elif r=$(recovered "$t"); then
        ev "hostile session $HOSTILE: ${what}link back after ${r}s"
    else
        HOSTILE_UNRECOVERED=$((HOSTILE_UNRECOVERED + 1))
        FAILED=1
        ev "hostile session $HOSTILE: ${what}link NOT back within ${RECOVERY_S}s"
    fi
}

# One half: kill $1 at random gaps, sample its peer ($2) after the warm-up and at the end.
NEXT_HOSTILE=$(($(date +%s) + HOSTILE_GAPS[HI++]))
half() {
    local victim=$1 watched=$2 start end next_kill w_pid= w_rss= w_fd= e_pid e_rss e_fd
    start=$(date +%s)
    end=$((start + HALF))
    next_kill=$((start + KILL_GAPS[KI++]))
    ev "half: killing $victim, watching $watched"
    while (($(date +%s) < end)); do
        check_unexpected
        if [[ -z $w_pid ]] && (($(date +%s) >= start + WARMUP)); then
            w_pid=$(pid_of "$watched"); w_rss=$(rss_anon "$w_pid"); w_fd=$(fd_count "$w_pid")
            ev "$watched after warm-up: RssAnon ${w_rss} kB, ${w_fd} fds"
        fi
        if (($(date +%s) >= next_kill)); then
            kill_side "$victim"
            next_kill=$(($(date +%s) + KILL_GAPS[KI++]))
        elif (($(date +%s) >= NEXT_HOSTILE)); then
            hostile
            NEXT_HOSTILE=$(($(date +%s) + HOSTILE_GAPS[HI++]))
        fi
        sleep 1
    done
    e_pid=$(pid_of "$watched"); e_rss=$(rss_anon "$e_pid"); e_fd=$(fd_count "$e_pid")
    ev "$watched at the end of the half: RssAnon ${e_rss} kB, ${e_fd} fds"
    if [[ -n $w_pid && $w_pid == "$e_pid" && -n $w_rss && -n $e_rss ]]; then
        GROWTH_RSS[$watched]=$((e_rss - w_rss))
        GROWTH_FD[$watched]=$((e_fd - w_fd))
    else
        GROWTH_RSS[$watched]="n/a"   # restarted during the half: nothing to compare
        GROWTH_FD[$watched]="n/a"
    fi
}
half card host
half host card

touch "$DIR/stop"
for _ in $(seq $((RUN_S + 25))); do alive "$TRAFFIC_PID" || break; sleep 1; done
kill "$TRAFFIC_PID" 2>/dev/null
wait "$TRAFFIC_PID" 2>/dev/null
TRAFFIC_PID=
RUNS=$(grep -c . "$DIR/iperf.runs" 2>/dev/null); RUNS=${RUNS:-0}
FAILED_RUNS=$(grep -c '^fail' "$DIR/iperf.runs" 2>/dev/null); FAILED_RUNS=${FAILED_RUNS:-0}
GBIT=$(awk '/^ok/ { s += $2; n++ } END { printf "%.2f", n ? s / n : 0 }' "$DIR/iperf.runs" 2>/dev/null)
stats() { echo "$1" | awk '{ for (i = 1; i <= NF; i++) { s += $i; if ($i > m) m = $i } } END { printf "%.1f %.1f", NF ? s / NF : 0, m }'; }
read -r HOST_RMEAN HOST_RMAX < <(stats "${RTIMES[host]}")
read -r CARD_RMEAN CARD_RMAX < <(stats "${RTIMES[card]}")

cat <<FIG
minutes=$M
host_peer_kills=${KILLS[host]}
host_recovered=${RECOVERED[host]}
host_rss_growth_kb=${GROWTH_RSS[host]}
host_fd_growth=${GROWTH_FD[host]}
card_peer_kills=${KILLS[card]}
card_recovered=${RECOVERED[card]}
card_rss_growth_kb=${GROWTH_RSS[card]}
card_fd_growth=${GROWTH_FD[card]}
hostile_sessions=$HOSTILE
iperf_runs=$RUNS
iperf_failed_runs=$FAILED_RUNS
gbit_mean=$GBIT
host_recovery_mean_s=$HOST_RMEAN
host_recovery_max_s=$HOST_RMAX
card_recovery_mean_s=$CARD_RMEAN
card_recovery_max_s=$CARD_RMAX
host_unexpected_exits=${UNEXPECTED[host]}
card_unexpected_exits=${UNEXPECTED[card]}
hostile_second_client_admitted=$SECOND_ADMITTED
hostile_truncate_ok=$TRUNCATE_OK
hostile_truncate_refused=$TRUNCATE_REFUSED
hostile_disturbed=$HOSTILE_DISTURBED
hostile_unrecovered=$HOSTILE_UNRECOVERED
FIG
exit $FAILED
