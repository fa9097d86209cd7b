using System.Runtime.InteropServices;
using Vop.Links.Transport;
using Vop.Netstack.VhostNet;
using Vop.Netstack.Virtio;
using static Vop.Netstack.VhostNet.VhostNetInterop;

namespace Vop.Netstack.Tests;

/// <summary>
/// The vhost-net ABI as vop declares it, held against include/uapi/linux/vhost.h and vhost_types.h: struct
/// sizes and field offsets, and each ioctl number recomputed from the kernel's _IOC encoding
/// (dir &lt;&lt; 30 | size &lt;&lt; 16 | type &lt;&lt; 8 | nr). Root-free; the guest test runs the real thing.
/// </summary>
public class VhostNetInteropTests
{
    private const uint None = 0;
    private const uint Write = 1; // _IOC_WRITE: userspace writes, the kernel reads (_IOW)
    private const uint Read = 2;  // _IOC_READ (_IOR)

    private static uint Ioc(uint dir, uint nr, int size) => (dir << 30) | ((uint)size << 16) | ((uint)VhostVirtio << 8) | nr;

    [Fact]
    public void StructsHaveTheKernelsSizesAndOffsets()
    {
        Assert.Equal(8, Marshal.SizeOf<VringState>());        // { unsigned int index; unsigned int num; }
        Assert.Equal(8, Marshal.SizeOf<VringFile>());         // { unsigned int index; int fd; }
        Assert.Equal(40, Marshal.SizeOf<VringAddr>());        // index, flags, 4 × __u64
        Assert.Equal(8, (int)Marshal.OffsetOf<VringAddr>(nameof(VringAddr.DescUserAddr)));
        Assert.Equal(16, (int)Marshal.OffsetOf<VringAddr>(nameof(VringAddr.UsedUserAddr)));  // used before avail, as in the header
        Assert.Equal(24, (int)Marshal.OffsetOf<VringAddr>(nameof(VringAddr.AvailUserAddr)));
        Assert.Equal(32, (int)Marshal.OffsetOf<VringAddr>(nameof(VringAddr.LogGuestAddr)));
        Assert.Equal(32, Marshal.SizeOf<MemoryRegion>());     // guest_phys_addr, memory_size, userspace_addr, flags_padding
        Assert.Equal(16, (int)Marshal.OffsetOf<MemoryRegion>(nameof(MemoryRegion.UserspaceAddr)));
        Assert.Equal(8 + 32, Marshal.SizeOf<MemoryOneRegion>()); // { __u32 nregions; __u32 padding; } then regions[]
        Assert.Equal(8, (int)Marshal.OffsetOf<MemoryOneRegion>(nameof(MemoryOneRegion.Region)));
    }

    [Fact]
    public void IoctlNumbersMatchTheKernelsEncoding()
    {
        Assert.Equal(VHOST_GET_FEATURES, Ioc(Read, 0x00, sizeof(ulong)));
        Assert.Equal(VHOST_SET_FEATURES, Ioc(Write, 0x00, sizeof(ulong)));
        Assert.Equal(VHOST_SET_OWNER, Ioc(None, 0x01, 0));
        Assert.Equal(VHOST_SET_MEM_TABLE, Ioc(Write, 0x03, 8));   // sizeof(struct vhost_memory): the flexible array adds nothing
        Assert.Equal(VHOST_SET_VRING_NUM, Ioc(Write, 0x10, Marshal.SizeOf<VringState>()));
        Assert.Equal(VHOST_SET_VRING_ADDR, Ioc(Write, 0x11, Marshal.SizeOf<VringAddr>()));
        Assert.Equal(VHOST_SET_VRING_BASE, Ioc(Write, 0x12, Marshal.SizeOf<VringState>()));
        Assert.Equal(VHOST_GET_VRING_BASE, Ioc(Read | Write, 0x12, Marshal.SizeOf<VringState>()));
        Assert.Equal(VHOST_SET_VRING_KICK, Ioc(Write, 0x20, Marshal.SizeOf<VringFile>()));
        Assert.Equal(VHOST_SET_VRING_CALL, Ioc(Write, 0x21, Marshal.SizeOf<VringFile>()));
        Assert.Equal(VHOST_SET_VRING_ERR, Ioc(Write, 0x22, Marshal.SizeOf<VringFile>()));
        Assert.Equal(VHOST_NET_SET_BACKEND, Ioc(Write, 0x30, Marshal.SizeOf<VringFile>()));
    }

    [Fact]
    public void OfferKeepsTheTapsBitsAndOnlyTheRingBitsTheKernelHas()
    {
        // What Linux 6.1's vhost-net offers: VHOST_FEATURES (NOTIFY_ON_EMPTY 24, ANY_LAYOUT 27 ... ) | MRG_RXBUF | VIRTIO_NET_HDR | ACCESS_PLATFORM.
        const ulong kernel = (1UL << 24) | (1UL << 28) | VirtioFeatures.EventIdx | (1UL << VHOST_F_LOG_ALL) | (1UL << 27) |
            VirtioFeatures.Version1 | NetFeatures.MrgRxbuf | (1UL << VHOST_NET_F_VIRTIO_NET_HDR) | (1UL << 33);
        Assert.Equal(NetFeatures.Offered, VhostNetDevice.Mask(NetFeatures.Offered, kernel));

        // A kernel without EVENT_IDX: the device must not offer it (the driver would use it and the kernel not).
        ulong withoutEventIdx = VhostNetDevice.Mask(NetFeatures.Offered, kernel & ~VirtioFeatures.EventIdx);
        Assert.Equal(0UL, withoutEventIdx & VirtioFeatures.EventIdx);
        Assert.Equal(NetFeatures.Offered & ~VirtioFeatures.EventIdx, withoutEventIdx);

        // Net bits (offloads, MAC, MTU, status) are the TAP's and stay whatever the kernel says.
        Assert.Equal(NetFeatures.Offered & ~VhostNetDevice.TransportBits, VhostNetDevice.Mask(NetFeatures.Offered, 0) & ~VhostNetDevice.TransportBits);
        Assert.Equal(0UL, VhostNetDevice.Mask(NetFeatures.MrgRxbuf, 0));
    }
}
