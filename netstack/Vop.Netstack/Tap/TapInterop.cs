using System.Runtime.InteropServices;
using Tmds.Linux;

namespace Vop.Netstack.Tap;

/// <summary>TUN/TAP and interface ioctls (linux/if_tun.h, linux/sockios.h) and scatter/gather I/O.</summary>
internal static unsafe partial class TapInterop
{
    public const int IFF_TAP = 0x0002;
    public const int IFF_NO_PI = 0x1000;
    public const int IFF_VNET_HDR = 0x4000;
    public const int IFF_UP = 0x1;

    public const uint TUNSETIFF = 0x400454ca;        // _IOW('T', 202, int)
    public const uint TUNSETOFFLOAD = 0x400454d0;    // _IOW('T', 208, unsigned int)
    public const uint TUNSETVNETHDRSZ = 0x400454d8;  // _IOW('T', 216, int)
    public const uint TUNSETCARRIER = 0x400454e2;    // _IOW('T', 226, int)

    public const uint TUN_F_CSUM = 0x01;
    public const uint TUN_F_TSO4 = 0x02;
    public const uint TUN_F_TSO6 = 0x04;
    public const uint TUN_F_TSO_ECN = 0x08;

    public const uint SIOCGIFFLAGS = 0x8913;
    public const uint SIOCSIFFLAGS = 0x8914;
    public const uint SIOCSIFMTU = 0x8922;
    public const uint SIOCSIFHWADDR = 0x8924;
    public const ushort ARPHRD_ETHER = 1;

    public const int IFNAMSIZ = 16;

    // sys/socket.h, for a frame socket standing in for a TAP (TapDevice.FromFd).
    public const int SO_TYPE = 3;
    public const int SOCK_DGRAM = 2;
    public const int SOCK_SEQPACKET = 5;
    public const int MSG_TRUNC = 0x20;
    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_NOSIGNAL = 0x4000;

    /// <summary>struct ifreq: 16-byte name, then a 24-byte union (flags, mtu, hwaddr).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 40)]
    public struct IfReq
    {
        [FieldOffset(0)]
        public fixed byte Name[IFNAMSIZ];

        [FieldOffset(16)]
        public short Flags;

        [FieldOffset(16)]
        public int Mtu;

        [FieldOffset(16)]
        public ushort HwFamily;

        [FieldOffset(18)]
        public fixed byte HwData[14];
    }

    public static IfReq Named(string name)
    {
        var req = default(IfReq);
        for (int i = 0; i < name.Length; i++)
        {
            req.Name[i] = (byte)name[i];
        }

        return req;
    }

    public static int Ioctl(int fd, uint request, void* arg) => LibC.ioctl(fd, unchecked((int)request), arg);

    public static int Ioctl(int fd, uint request, int arg) => LibC.ioctl(fd, unchecked((int)request), arg);

    [LibraryImport("libc", EntryPoint = "readv", SetLastError = true)]
    public static partial nint Readv(int fd, iovec* iov, int count);

    [LibraryImport("libc", EntryPoint = "writev", SetLastError = true)]
    public static partial nint Writev(int fd, iovec* iov, int count);

    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint RecvMsg(int fd, msghdr* msg, int flags);

    [LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMsg(int fd, msghdr* msg, int flags);
}
