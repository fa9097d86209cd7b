#!/usr/bin/env bash
# Installs what the tests need, builds with warnings as errors, runs every test.
# Needs root for the end-to-end tests (network namespaces, TAP devices): they fail loudly without it.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(iproute2 procps iputils-ping ethtool iperf3 util-linux openssh-server openssh-client tmux prometheus libpcap0.8 tshark qemu-system-x86 cpio xz-utils)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "test.sh: missing packages ${missing[*]} and not root to install them" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

command -v dotnet >/dev/null || { echo "test.sh: the .NET SDK (dotnet) is not on PATH" >&2; exit 1; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

dotnet restore vop.slnx
dotnet build vop.slnx -c Release --no-restore -warnaserror
# One test assembly at a time: the end-to-end tests share two cores with the spinning ring tests.
dotnet test vop.slnx -c Release --no-build -m:1 --logger "console;verbosity=normal"
