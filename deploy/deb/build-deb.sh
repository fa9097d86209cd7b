#!/usr/bin/env bash
# Builds the Debian packages: artifacts/vop_VERSION_amd64.deb, and artifacts/vop_VERSION_arm64.deb when the
# linux-arm64 publish works on this machine (it needs the arm64 cross toolchain; without it arm64 is skipped
# with a message, unless VOP_DEB_REQUIRE_ARM64=1).
#
#   deploy/deb/build-deb.sh [VERSION]
#
# VERSION defaults to 0.1.0+gitYYYYMMDD.HASH (the HEAD commit's date and short hash). Environment:
#   VOP_DEB_ARCHES="amd64 arm64"   which packages to build
#   VOP_AMD64_BINARY / VOP_ARM64_BINARY   use this already published vop executable instead of publishing
#   VOP_DEB_MAINTAINER="Name <mail>"   the Maintainer field
#   VOP_DEB_LINTIAN=0              skip lintian (it runs when installed, and fails the build on any warning)
#
# Package contents: /usr/bin/vop (Native AOT), the systemd unit, example configs as conffiles under
# /etc/vop/examples/ (none is active: nothing runs until `systemctl enable --now vop@NAME` with an
# /etc/vop/NAME.json), Prometheus and Grafana files under /usr/share/vop/, docs, the vop(8) man page and
# the bash completion (both generated from the command definitions by deploy/tools/Vop.DocGen).
# No maintainer scripts: installing starts, enables and creates nothing at run time.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
cd "$ROOT"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
umask 022

die() { echo "build-deb: $*" >&2; exit 1; }
for tool in dpkg-deb gzip readelf md5sum dotnet; do
    command -v "$tool" >/dev/null || die "'$tool' is missing (apt-get install binutils for readelf; the .NET SDK for dotnet)"
done

# ---- version, date, maintainer ---------------------------------------------------------------------------
if git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null 2>&1; then
    COMMIT=$(git -C "$ROOT" rev-parse --short=7 HEAD)
    EPOCH=$(git -C "$ROOT" log -1 --format=%ct HEAD)
else
    COMMIT=""
    EPOCH=$(date +%s)
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$EPOCH}
VERSION=${1:-0.1.0+git$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d)${COMMIT:+.$COMMIT}}
[[ $VERSION =~ ^[0-9][A-Za-z0-9.+~]*(-[A-Za-z0-9.+~]+)?$ ]] || die "'$VERSION' is not a Debian version (digits first; letters, digits and . + ~; one optional -REVISION)"
MAINTAINER=${VOP_DEB_MAINTAINER:-vop maintainers <maintainers@users.noreply.r-seed-ff831eef.example>}
DAY=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
ARCHES=${VOP_DEB_ARCHES:-amd64 arm64}

OUT="$ROOT/artifacts"
WORK="$OUT/deb-work"
rm -rf "$WORK"
mkdir -p "$WORK" "$OUT"

# ---- the man page and completion, from the command definitions ------------------------------------------
echo "build-deb: generating vop(8) and the bash completion (deploy/tools/Vop.DocGen)" >&2
if ! log=$(dotnet build deploy/tools/Vop.DocGen/Vop.DocGen.csproj -c Release -nologo -v quiet -warnaserror 2>&1); then
    echo "$log" >&2
    die "building deploy/tools/Vop.DocGen failed"
fi
dotnet deploy/tools/Vop.DocGen/bin/Release/net10.0/Vop.DocGen.dll "$WORK/gen" "$VERSION" "$DAY" >&2
if command -v groff >/dev/null; then
    warnings=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$WORK/gen/vop.8" 2>&1) || true
    [[ -z $warnings ]] || die "vop.8 does not render cleanly: $warnings"
fi

# ---- the native executable per architecture --------------------------------------------------------------
# The executable's NEEDED libraries must all come from libc6; the Depends on libc6 is the newest glibc
# symbol version it binds.
libc_depends() {
    local bin=$1 lib max
    while read -r lib; do
        case $lib in
            libc.so.6 | libm.so.6 | libdl.so.2 | libpthread.so.0 | librt.so.1 | ld-linux-*.so.* ) ;;
            *) die "$bin needs $lib: map it to its Debian package in libc_depends (deploy/deb/build-deb.sh)" ;;
        esac
    done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    max=$(readelf --dyn-syms -W "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
    [[ -n $max ]] || die "$bin binds no versioned glibc symbol (is it a glibc executable?)"
    echo "libc6 (>= $max)"
}

# The .NET runtime's third-party notices (zlib-ng and friends are compiled into the executable too).
runtime_notices() {
    local rid=$1 packages
    packages=$(dotnet nuget locals global-packages --list 2>/dev/null | sed -n 's/^global-packages: //p')
    find "${packages:-$HOME/.nuget/packages}/microsoft.dotnet.ilcompiler" "${packages:-$HOME/.nuget/packages}/runtime.$rid.microsoft.dotnet.ilcompiler" \
        -maxdepth 2 -iname 'THIRD-PARTY-NOTICES.TXT' 2>/dev/null | sort -V | tail -n1
}

# package ARCH BINARY: stages the tree, writes DEBIAN/, builds and checks artifacts/vop_VERSION_ARCH.deb.
package() {
    local arch=$1 bin=$2 rid root doc installed depends notices changelog
    [[ $arch == amd64 ]] && rid=linux-x64 || rid=linux-arm64
    [[ -x $bin ]] || die "no executable at $bin"

    root="$WORK/root-$arch"
    doc="$root/usr/share/doc/vop"
    install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/vop/examples" \
        "$root/usr/share/vop/prometheus" "$root/usr/share/vop/grafana/dashboards" \
        "$root/usr/share/vop/grafana/provisioning/dashboards" "$root/usr/share/vop/grafana/provisioning/datasources" \
        "$doc" "$root/usr/share/man/man8" "$root/usr/share/bash-completion/completions"
    install -m 0755 "$bin" "$root/usr/bin/vop"
    # Debian 12 ships units in /lib/systemd/system (moving them under /usr waits for trixie's dpkg).
    install -m 0644 deploy/systemd/vop@.service "$root/lib/systemd/system/"
    install -m 0644 deploy/examples/*.json "$root/etc/vop/examples/"
    install -m 0644 deploy/prometheus/prometheus.yml deploy/prometheus/vop.rules.yml "$root/usr/share/vop/prometheus/"
    install -m 0644 deploy/grafana/dashboards/vop.json "$root/usr/share/vop/grafana/dashboards/"
    install -m 0644 deploy/grafana/provisioning/dashboards/vop.yml "$root/usr/share/vop/grafana/provisioning/dashboards/"
    install -m 0644 deploy/grafana/provisioning/datasources/prometheus.yml "$root/usr/share/vop/grafana/provisioning/datasources/"
    # The unit's Documentation= points at README.md, so it stays uncompressed.
    install -m 0644 README.md docs/operations.md deploy/deb/copyright "$doc/"
    notices=$(runtime_notices "$rid")
    if [[ -n $notices ]]; then
        gzip -9nc "$notices" >"$doc/THIRD-PARTY-NOTICES.dotnet.gz"
    else
        echo "build-deb: warning: the .NET runtime's THIRD-PARTY-NOTICES.TXT was not found; not shipped" >&2
    fi
    # A version without -REVISION is a native package: its changelog is changelog.gz, else changelog.Debian.gz.
    [[ $VERSION == *-* ]] && changelog=changelog.Debian.gz || changelog=changelog.gz
    {
        echo "vop ($VERSION) unstable; urgency=medium"
        echo
        echo "  * Built from the vop repository${COMMIT:+ at commit $COMMIT}."
        echo
        echo " -- $MAINTAINER  $(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
    } | gzip -9n >"$doc/$changelog"
    gzip -9nc "$WORK/gen/vop.8" >"$root/usr/share/man/man8/vop.8.gz"
    install -m 0644 "$WORK/gen/vop.bash-completion" "$root/usr/share/bash-completion/completions/vop"
    install -D -m 0644 deploy/deb/lintian-overrides "$root/usr/share/lintian/overrides/vop"
    chmod 0644 "$doc"/* "$root/usr/share/man/man8/vop.8.gz"

    # No OpenSSL: .NET would dlopen it (not NEEDED) for hashing or crypto random numbers, which no verb of
    # the product uses (checked with strace on run, status and check-config; only hidden test verbs hash).
    depends="$(libc_depends "$root/usr/bin/vop"), iproute2"
    installed=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    cat >"$root/DEBIAN/control" <<EOF
Package: vop
Version: $VERSION
Architecture: $arch
Maintainer: $MAINTAINER
Installed-Size: $installed
Depends: $depends
Recommends: libpcap0.8
Section: net
Priority: optional
Description: virtio-net and virtio-console over a shared memory window
 vop is a userspace appliance that carries virtio devices between two Linux
 instances which share a memory window but not a kernel: a host and a PCIe
 card in endpoint mode, two hosts joined by an NTB, a host and a VM (QEMU
 ivshmem or vhost-user), or two processes on one machine. It bridges a
 virtio-net device to a TAP interface on each end and serves a virtio-console
 device that gives a login console on the card and SSH into the card over it.
 It needs no kernel module on either side, and is the successor of the Intel
 MIC "VOP" driver and mpssd.
 .
 The package installs the vop executable (daemon and CLI), a systemd template
 unit vop@.service, example configs under /etc/vop/examples/, Prometheus alert
 rules and a Grafana dashboard. Nothing runs until a config is put in
 /etc/vop/NAME.json and vop@NAME is enabled.
EOF
    (cd "$root" && find etc -type f -printf '/%p\n' | sort) >"$root/DEBIAN/conffiles"
    (cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
    chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
    find "$root" -exec touch --no-dereference -d "@$SOURCE_DATE_EPOCH" {} +

    local deb="$OUT/vop_${VERSION}_${arch}.deb"
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
    echo "build-deb: $deb" >&2
    if [[ ${VOP_DEB_LINTIAN:-1} != 0 ]]; then
        if command -v lintian >/dev/null; then
            # Overrides live in the package (usr/share/lintian/overrides/vop), each with its reason.
            lintian --fail-on error,warning "$deb" >&2 || die "lintian found problems in $deb"
        else
            echo "build-deb: lintian is not installed; $deb is unchecked (apt-get install lintian)" >&2
        fi
    fi
    BUILT+=("$deb")
}

BUILT=()
for arch in $ARCHES; do
    case $arch in
        amd64) rid=linux-x64; bin=${VOP_AMD64_BINARY:-} ;;
        arm64) rid=linux-arm64; bin=${VOP_ARM64_BINARY:-} ;;
        *) die "unknown architecture '$arch' in VOP_DEB_ARCHES (amd64, arm64)" ;;
    esac
    if [[ -z $bin ]]; then
        # deploy/publish.sh: the Native AOT executable in artifacts/RID/ (the one the end-to-end tests run), its
        # path on stdout; it installs the native or cross toolchain with apt-get when missing.
        echo "build-deb: publishing $rid (deploy/publish.sh)" >&2
        if ! bin=$(deploy/publish.sh "$rid"); then
            if [[ $arch == amd64 || ${VOP_DEB_REQUIRE_ARM64:-0} == 1 ]]; then
                die "publishing vop for $rid failed (see above)"
            fi
            echo "build-deb: skipping arm64: the linux-arm64 Native AOT publish failed (it needs the arm64 cross toolchain, which deploy/publish.sh installs with apt-get as root: clang, lld, binutils-aarch64-linux-gnu and Debian's arm64 libc6-dev, libgcc-dev and zlib1g-dev; see above). The amd64 package is built; VOP_DEB_REQUIRE_ARM64=1 makes this an error." >&2
            continue
        fi
    fi
    package "$arch" "$bin"
done
rm -rf "$WORK"
printf '%s\n' "${BUILT[@]}"
