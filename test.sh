#!/usr/bin/env bash
# Installs what the tests need, builds with warnings as errors, publishes the Native AOT vop for linux-x64
# and linux-arm64 (warnings as errors), packages the amd64 .deb, then runs every test: the end-to-end
# tests against the native x64 binary (VOP_BINARY), the arm64 card tests against the native arm64 one
# in a QEMU aarch64 guest, the install test against the .deb, and a JIT subset against vop.dll.
# Needs root for the end-to-end tests (network namespaces, TAP devices): they fail loudly without it.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(iproute2 procps iputils-ping curl ethtool iperf3 util-linux openssh-server openssh-client tmux prometheus libpcap0.8 tshark
    qemu-system-x86 qemu-system-arm cpio xz-utils clang lld zlib1g-dev binutils lintian man-db)
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

# Native AOT for both architectures (publish.sh installs the arm64 cross sysroot when missing).
VOP_BINARY=$(deploy/publish.sh linux-x64)
VOP_ARM64_BINARY=$(deploy/publish.sh linux-arm64)
# The Debian package of the very binary the end-to-end tests run; PackageInstallTests installs and purges it.
VOP_DEB=$(VOP_DEB_ARCHES=amd64 VOP_AMD64_BINARY="$VOP_BINARY" deploy/deb/build-deb.sh | grep '_amd64\.deb$')
export VOP_BINARY VOP_ARM64_BINARY VOP_DEB

# One test assembly at a time: the end-to-end tests share two cores with the spinning ring tests.
dotnet test vop.slnx -c Release --no-build -m:1 --logger "console;verbosity=normal"

# The JIT build (what ./vop runs from a checkout) through every verb's main path and both window link kinds.
env -u VOP_BINARY dotnet test tests/Vop.Appliance.Tests/Vop.Appliance.Tests.csproj -c Release --no-build -m:1 \
    --filter "FullyQualifiedName~NetEndToEndTests|FullyQualifiedName~PciLinkTests|FullyQualifiedName~DaemonErrorTests|FullyQualifiedName~ConsoleEndToEndTests|FullyQualifiedName~CaptureEndToEndTests|FullyQualifiedName~MetricsEndToEndTests" \
    --logger "console;verbosity=normal"
