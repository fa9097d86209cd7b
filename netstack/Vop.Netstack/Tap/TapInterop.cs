using System.Runtime.InteropServices;

namespace Vop.Netstack.Tap;

/// <summary>
/// What Tmds.LibC lacks for TUN/TAP (linux/if_tun.h, linux/if.h): the TUNSET* ioctls, IFF_* flags and
/// struct ifreq. The SIOC*IF* ioctls, readv/writev and errno names come from LibC and LibCExtra.
/// </summary>
internal static unsafe class TapInterop
{
    public const int IFF_TUN = 0x0001;
    public const int IFF_TAP = 0x0002;
    public const int IFF_NO_PI = 0x1000;
    public const int IFF_VNET_HDR = 0x4000;
    public const int IFF_MULTI_QUEUE = 0x0100;
    public const int IFF_ATTACH_QUEUE = 0x0200;
    public const int IFF_DETACH_QUEUE = 0x0400;
    public const int IFF_UP = 0x1;

    public const int TUNSETIFF = 0x400454ca;        // _IOW('T', 202, int)
    public const int TUNSETOFFLOAD = 0x400454d0;    // _IOW('T', 208, unsigned int)
    public const int TUNSETVNETHDRSZ = 0x400454d8;  // _IOW('T', 216, int)
    public const int TUNSETCARRIER = 0x400454e2;    // _IOW('T', 226, int)
    public const int TUNSETQUEUE = 0x400454d9;      // _IOW('T', 217, int)

    public const uint TUN_F_CSUM = 0x01;
    public const uint TUN_F_TSO4 = 0x02;
    public const uint TUN_F_TSO6 = 0x04;
    public const uint TUN_F_TSO_ECN = 0x08;

    public const ushort ARPHRD_ETHER = 1;

    public const int IFNAMSIZ = 16;

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
}
