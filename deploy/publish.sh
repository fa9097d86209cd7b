#!/usr/bin/env bash
# Publishes vop as one self-contained Native AOT executable for a Linux RID, with warnings as errors.
#   deploy/publish.sh linux-x64|linux-arm64 [OUTDIR]      (default OUTDIR: artifacts/RID/)
# Prints the binary's path on stdout (the build log goes to stderr): bin=$(deploy/publish.sh linux-x64).
# Installs the native toolchain with apt-get when it is missing (needs root then): clang and zlib for a
# native build; for the other architecture Debian's multiarch libraries as the sysroot at /, lld and that
# architecture's objcopy (shared/reference/arm64-guest-recipe.md, "Cross-building").
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
RID=${1:-}
case $RID in
    linux-x64) ARCH=amd64 TRIPLE=x86_64-linux-gnu ;;
    linux-arm64) ARCH=arm64 TRIPLE=aarch64-linux-gnu ;;
    *) echo "usage: deploy/publish.sh linux-x64|linux-arm64 [OUTDIR]" >&2; exit 2 ;;
esac
OUT=${2:-$ROOT/artifacts/$RID}
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
HOST=$(dpkg --print-architecture)

installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }

need=(clang zlib1g-dev)
extra=()
if [[ $ARCH != "$HOST" ]]; then
    # Cross build: the target's libc, libgcc and zlib from Debian's multiarch packages make a sysroot at /
    # (a *-cross sysroot does not work: its libc.so script names absolute paths lld then looks for inside it).
    # libgcc-N-dev: the N of the host's own gcc (12 on Debian 12).
    gcc_dev=$(dpkg-query -W -f='${Package} ${Status}\n' 'libgcc-*-dev' 2>/dev/null \
        | awk '$1 ~ /^libgcc-[0-9]+-dev$/ && $NF == "installed" { print $1 }' | sort -V | tail -1)
    gcc_dev=${gcc_dev:-libgcc-12-dev}
    need+=(lld "binutils-${TRIPLE//_/-}" "libc6-dev:$ARCH" "$gcc_dev:$ARCH" "zlib1g-dev:$ARCH")
    extra=(-p:SysRoot=/ -p:LinkerFlavor=lld "-p:ObjCopyName=$TRIPLE-objcopy")
fi

missing=()
for p in "${need[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "publish.sh: missing packages ${missing[*]} and not root to install them" >&2
        exit 1
    fi
    echo "publish.sh: installing ${missing[*]}" >&2
    if [[ $ARCH != "$HOST" ]] && ! dpkg --print-foreign-architectures | grep -qx "$ARCH"; then
        dpkg --add-architecture "$ARCH"
    fi
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet publish "$ROOT/appliance/Vop.Appliance/Vop.Appliance.csproj" -c Release -r "$RID" -p:PublishAot=true -warnaserror \
    -nologo -o "$OUT" "${extra[@]}" >&2
[[ -x $OUT/vop ]] || { echo "publish.sh: no $OUT/vop after the publish" >&2; exit 1; }
echo "$OUT/vop"
