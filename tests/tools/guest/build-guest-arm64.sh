#!/usr/bin/env bash
# Builds the arm64 card guest for QEMU's aarch64 `virt` machine (TCG): Debian's stock arm64 kernel (its
# vmlinuz is an uncompressed Image that -kernel takes as is) and a busybox initramfs with what a native
# (AOT) arm64 vop needs to run as the card: glibc's loader, libc, libm, libgcc_s, OpenSSL, the tun module,
# and 9p so the host can share a directory with the vop binary, its config and its log (init-arm64 beside).
# vop's console port starts its command with `/bin/sh -c '... exec setsid --ctty ...'`: busybox's setsid
# knows only -c, and busybox's sh runs its own applets before PATH, so /bin/sh is dash and setsid
# util-linux's (a card with busybox alone gets "setsid: unrecognized option '--ctty'").
# Output: $OUT/Image and $OUT/initrd.gz (default /var/cache/vop-guest-arm64). Idempotent: rebuilds only
# when this script or the init changes. Installs qemu-system-arm and enables the arm64 architecture for
# apt-get download when run as root.
set -euo pipefail
OUT=${1:-${VOP_GUEST_ARM64_DIR:-/var/cache/vop-guest-arm64}}
HERE=$(cd "$(dirname "$0")" && pwd)
STAMP=$(sha256sum "$HERE/build-guest-arm64.sh" "$HERE/init-arm64" | sha256sum | cut -c1-16)
if [[ -f $OUT/stamp && $(cat "$OUT/stamp") == "$STAMP" && -f $OUT/Image && -f $OUT/initrd.gz ]] && command -v qemu-system-aarch64 >/dev/null; then
    exit 0
fi

as_root() { [[ $(id -u) -eq 0 ]] || { echo "build-guest-arm64: $1 (run as root once)" >&2; exit 1; }; }
updated=no
apt_update() { [[ $updated == yes ]] || { apt-get update -qq; updated=yes; }; }
if ! command -v qemu-system-aarch64 >/dev/null; then
    as_root "qemu-system-aarch64 is missing"
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-arm >/dev/null
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    as_root "the arm64 architecture is not enabled for apt"
    dpkg --add-architecture arm64
    updated=no
fi

# The kernel the linux-image-arm64 metapackage points at today (security updates move the ABI number).
kernel_package() { apt-cache depends linux-image-arm64:arm64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9.-]*-arm64\)\(:arm64\)\?$/\1/p' | head -1; }
KPKG=$(kernel_package)
if [[ -z $KPKG && $(id -u) -eq 0 ]]; then
    apt_update && KPKG=$(kernel_package)
fi
[[ -n $KPKG ]] || { echo "build-guest-arm64: no linux-image-*-arm64 candidate (run apt-get update)" >&2; exit 1; }

mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"
cd "$WORK"
apt-get download -q -o APT::Sandbox::User=root "$KPKG:arm64" busybox-static:arm64 libc6:arm64 libgcc-s1:arm64 libssl3:arm64 util-linux:arm64 dash:arm64 >/dev/null
for d in *.deb; do dpkg-deb -x "$d" x; done
KVER=${KPKG#linux-image-}
[[ $(dd if="x/boot/vmlinuz-$KVER" bs=1 skip=56 count=4 2>/dev/null) == ARMd ]] || { echo "build-guest-arm64: x/boot/vmlinuz-$KVER is not an arm64 Image (no ARM\x64 magic)" >&2; exit 1; }

mkdir -p rd/bin rd/usr/bin rd/lib/aarch64-linux-gnu rd/mod rd/dev rd/proc rd/sys rd/tmp rd/run rd/root rd/vop
cp x/bin/busybox rd/bin/busybox
cp x/usr/bin/setsid rd/usr/bin/setsid
cp x/bin/dash rd/usr/bin/dash
# What `readelf -d vop` lists as NEEDED for the AOT binary (libc, libm, the loader; the loader's path is
# the ELF interpreter's), libgcc_s, and OpenSSL, which .NET dlopens (not NEEDED) for
# RandomNumberGenerator and SHA-256: without it vop aborts with "No usable version of libssl was found".
for l in libc.so.6 libm.so.6 libgcc_s.so.1 ld-linux-aarch64.so.1 libssl.so.3 libcrypto.so.3; do
    src=$(find x/lib x/usr/lib -name "$l" 2>/dev/null | head -1)
    [[ -n $src ]] || { echo "build-guest-arm64: $l missing from the arm64 packages" >&2; exit 1; }
    cp -L "$src" "rd/lib/aarch64-linux-gnu/$l"
done
ln -s aarch64-linux-gnu/ld-linux-aarch64.so.1 rd/lib/ld-linux-aarch64.so.1
M=x/lib/modules/$KVER/kernel
# Dependency order from each module's depends=: virtio_pci (virtio and virtio_ring are built in), 9p, tun.
for m in drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci \
         fs/netfs/netfs fs/fscache/fscache net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p drivers/net/tun; do
    name=$(basename "$m")
    if [[ -f $M/$m.ko ]]; then cp "$M/$m.ko" "rd/mod/$name.ko"
    elif [[ -f $M/$m.ko.xz ]]; then xz -dc "$M/$m.ko.xz" > "rd/mod/$name.ko"
    else echo "build-guest-arm64: module $m missing from $KPKG" >&2; exit 1; fi
done
cp "$HERE/init-arm64" rd/init
chmod +x rd/init
(cd rd && find . | cpio -o -H newc --quiet | gzip -1 > ../initrd.gz)

cp "x/boot/vmlinuz-$KVER" "$OUT/Image"
mv initrd.gz "$OUT/initrd.gz"
echo "$KPKG" > "$OUT/kernel"
echo "$STAMP" > "$OUT/stamp"
