using System.Runtime.InteropServices;

namespace Vop.Netstack.VhostNet;

/// <summary>
/// What Tmds.LibC lacks for the kernel's vhost-net (include/uapi/linux/vhost.h, vhost_types.h): the
/// VHOST_* ioctl numbers and the structs they carry. Numbers are spelled out as the kernel's _IOx macros
/// compute them (dir &lt;&lt; 30 | size &lt;&lt; 16 | 0xAF &lt;&lt; 8 | nr); <c>VhostNetInteropTests</c> recomputes them.
/// </summary>
internal static class VhostNetInterop
{
    public const string DevicePath = "/dev/vhost-net";

    public const byte VhostVirtio = 0xAF;

    public const uint VHOST_GET_FEATURES = 0x8008AF00;     // _IOR(VHOST_VIRTIO, 0x00, __u64)
    public const uint VHOST_SET_FEATURES = 0x4008AF00;     // _IOW(VHOST_VIRTIO, 0x00, __u64)
    public const uint VHOST_SET_OWNER = 0x0000AF01;        // _IO(VHOST_VIRTIO, 0x01)
    public const uint VHOST_SET_MEM_TABLE = 0x4008AF03;    // _IOW(VHOST_VIRTIO, 0x03, struct vhost_memory)
    public const uint VHOST_SET_VRING_NUM = 0x4008AF10;    // _IOW(VHOST_VIRTIO, 0x10, struct vhost_vring_state)
    public const uint VHOST_SET_VRING_ADDR = 0x4028AF11;   // _IOW(VHOST_VIRTIO, 0x11, struct vhost_vring_addr)
    public const uint VHOST_SET_VRING_BASE = 0x4008AF12;   // _IOW(VHOST_VIRTIO, 0x12, struct vhost_vring_state)
    public const uint VHOST_GET_VRING_BASE = 0xC008AF12;   // _IOWR(VHOST_VIRTIO, 0x12, struct vhost_vring_state)
    public const uint VHOST_SET_VRING_KICK = 0x4008AF20;   // _IOW(VHOST_VIRTIO, 0x20, struct vhost_vring_file)
    public const uint VHOST_SET_VRING_CALL = 0x4008AF21;   // _IOW(VHOST_VIRTIO, 0x21, struct vhost_vring_file)
    public const uint VHOST_SET_VRING_ERR = 0x4008AF22;    // _IOW(VHOST_VIRTIO, 0x22, struct vhost_vring_file)
    public const uint VHOST_NET_SET_BACKEND = 0x4008AF30;  // _IOW(VHOST_VIRTIO, 0x30, struct vhost_vring_file)

    /// <summary>vhost.h: all region addresses and sizes must be 4 KiB aligned.</summary>
    public const ulong VhostPageSize = 0x1000;

    /// <summary>vhost.h feature bit: vhost-net adds/strips the virtio_net_hdr itself (for a socket without one). vop never asks for it: its TAP carries the header.</summary>
    public const int VHOST_NET_F_VIRTIO_NET_HDR = 27;

    /// <summary>vhost.h feature bit: dirty logging for migration. Never set by vop.</summary>
    public const int VHOST_F_LOG_ALL = 26;

    /// <summary>struct vhost_vring_state { unsigned int index; unsigned int num; }.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct VringState
    {
        public uint Index;
        public uint Num;
    }

    /// <summary>struct vhost_vring_file { unsigned int index; int fd; } (fd -1 unbinds).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct VringFile
    {
        public uint Index;
        public int Fd;
    }

    /// <summary>struct vhost_vring_addr: index, flags, then user addresses of desc, used, avail (that order) and the log address.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct VringAddr
    {
        public uint Index;
        public uint Flags;
        public ulong DescUserAddr;
        public ulong UsedUserAddr;
        public ulong AvailUserAddr;
        public ulong LogGuestAddr;
    }

    /// <summary>struct vhost_memory_region.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MemoryRegion
    {
        public ulong GuestPhysAddr;
        public ulong MemorySize;
        public ulong UserspaceAddr;
        public ulong FlagsPadding;
    }

    /// <summary>struct vhost_memory with exactly one region: { __u32 nregions; __u32 padding; struct vhost_memory_region regions[]; }.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MemoryOneRegion
    {
        public uint NRegions;
        public uint Padding;
        public MemoryRegion Region;
    }
}
