#!/usr/bin/env bash
# Builds a small Linux guest for QEMU (TCG): Debian's stock kernel (extracted vmlinux, booted via PVH)
# and a busybox initramfs that loads the stock virtio_net driver (plus tun and 9p, so vop itself can run
# inside the guest from the host's root shared read-only, vfio-pci for its interrupts, and vhost_net for
# vop's kernel datapath, which this build machine's kernel lacks) and gives a root shell on ttyS0.
# Output: $OUT/vmlinux and $OUT/initrd.gz (default /var/cache/vop-guest). Idempotent: rebuilds only when
# this script changes. Needs root-free apt-get download, dpkg-deb, cpio, xz.
set -euo pipefail
OUT=${1:-${VOP_GUEST_DIR:-/var/cache/vop-guest}}
HERE=$(cd "$(dirname "$0")" && pwd)
STAMP=$(sha256sum "$HERE/build-guest.sh" "$HERE/init" | sha256sum | cut -c1-16)
if [[ -f $OUT/stamp && $(cat "$OUT/stamp") == "$STAMP" && -f $OUT/vmlinux && -f $OUT/initrd.gz ]]; then
    exit 0
fi

mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"
cd "$WORK"

# The kernel the linux-image-amd64 metapackage points at today (security updates move the ABI number).
kernel_package() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9.-]*-amd64\)$/\1/p' | head -1; }
KPKG=$(kernel_package)
if [[ -z $KPKG && $(id -u) -eq 0 ]]; then
    apt-get update -qq && KPKG=$(kernel_package)
fi
[[ -n $KPKG ]] || { echo "build-guest: no linux-image-*-amd64 candidate (run apt-get update)" >&2; exit 1; }
apt-get download -q -o APT::Sandbox::User=root "$KPKG" busybox-static >/dev/null
dpkg-deb -x linux-image-*.deb k
dpkg-deb -x busybox-static_*.deb bb
KVER=${KPKG#linux-image-}

# vmlinuz is a bzImage with an XZ payload; the raw ELF has a PVH note, which boots ~2 s faster under TCG.
V=k/boot/vmlinuz-$KVER
off=$(grep -abo $'\xfd7zXZ\x00' "$V" | head -1 | cut -d: -f1)
tail -c +$((off + 1)) "$V" | xz -dc 2>/dev/null > vmlinux || true
[[ -s vmlinux ]] || { echo "build-guest: could not extract vmlinux from $V" >&2; exit 1; }

mkdir -p rd/bin rd/mod rd/dev rd/proc rd/sys rd/tmp rd/root
cp bb/bin/busybox rd/bin/busybox
M=k/lib/modules/$KVER/kernel
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev \
         drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/core/failover \
         drivers/net/net_failover drivers/net/virtio_net drivers/net/tun \
         drivers/net/tap drivers/vhost/vhost_iotlb drivers/vhost/vhost drivers/vhost/vhost_net \
         fs/netfs/netfs fs/fscache/fscache net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p \
         virt/lib/irqbypass drivers/vfio/vfio_virqfd drivers/vfio/vfio drivers/vfio/vfio_iommu_type1 \
         drivers/vfio/pci/vfio-pci-core drivers/vfio/pci/vfio-pci; do
    name=$(basename "$m")
    if [[ -f $M/$m.ko ]]; then cp "$M/$m.ko" "rd/mod/$name.ko"
    elif [[ -f $M/$m.ko.xz ]]; then xz -dc "$M/$m.ko.xz" > "rd/mod/$name.ko"
    else echo "build-guest: module $m missing from $KPKG" >&2; exit 1; fi
done
cp "$HERE/init" rd/init
chmod +x rd/init
(cd rd && find . | cpio -o -H newc --quiet | gzip -1 > ../initrd.gz)

mv vmlinux "$OUT/vmlinux"
mv initrd.gz "$OUT/initrd.gz"
echo "$KPKG" > "$OUT/kernel"
echo "$STAMP" > "$OUT/stamp"
