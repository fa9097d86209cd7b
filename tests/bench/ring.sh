#!/usr/bin/env bash
# Ring throughput between two processes over the window (loopback link: memfd + eventfds via the
# ivshmem-protocol socket), in millions of buffers per second. Not a test: prints one name=value line
# per figure. Each figure is the median of RUNS runs of COUNT buffers.
#   tests/bench/ring.sh [COUNT] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT=${1:-10000000}
RUNS=${2:-3}
dotnet build tests/tools/Vop.RingPeer -c Release -v quiet -nologo >/dev/null
PEER=(dotnet tests/tools/Vop.RingPeer/bin/Release/net10.0/Vop.RingPeer.dll)
DIR=$(mktemp -d /tmp/vop-ring-bench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT

# run PAYLOAD DIRECTIONS -> prints the driver's output
run() {
    local sock="$DIR/ring.sock"
    "${PEER[@]}" --role device --socket "$sock" --count "$COUNT" --payload "$1" --directions "$2" >"$DIR/device.out" 2>&1 &
    local dev=$!
    "${PEER[@]}" --role driver --socket "$sock" >"$DIR/driver.out" 2>&1 || { cat "$DIR/driver.out" >&2; kill "$dev" 2>/dev/null; exit 1; }
    wait "$dev" || { cat "$DIR/device.out" >&2; exit 1; }
    cat "$DIR/driver.out"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

figure() { # NAME PAYLOAD DIRECTIONS KEY
    local vals=()
    for _ in $(seq "$RUNS"); do
        vals+=("$(run "$2" "$3" | sed -n "s/^driver_$4=//p")")
    done
    echo "$1=$(printf '%s\n' "${vals[@]}" | median)"
}

echo "ring_count=$COUNT"
echo "ring_runs=$RUNS"
figure ring_mpps_empty 0 to-device to_device_mpps
figure ring_mpps_64b 64 to-device to_device_mpps
figure ring_mpps_empty_to_driver 0 to-driver to_driver_mpps
figure ring_mpps_64b_to_driver 64 to-driver to_driver_mpps
figure ring_mpps_64b_both_each_way 64 both to_device_mpps
echo "cpus=$(nproc)"
