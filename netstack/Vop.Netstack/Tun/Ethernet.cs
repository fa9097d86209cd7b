using System.Buffers.Binary;

namespace Vop.Netstack.Tun;

/// <summary>The Ethernet II header a TUN end adds and strips, and MAC addresses held as one 48-bit value.</summary>
internal static class Ethernet
{
    public const int HeaderSize = 14;
    public const int MinFrame = 60;              // without FCS: shorter frames are padded
    public const ushort TypeIPv4 = 0x0800;
    public const ushort TypeArp = 0x0806;
    public const ushort TypeIPv6 = 0x86DD;
    public const ulong Broadcast = 0xFFFF_FFFF_FFFF;

    /// <summary>A MAC as the low 48 bits, first byte most significant (so it reads as written).</summary>
    public static ulong Mac(ReadOnlySpan<byte> b) =>
        ((ulong)b[0] << 40) | ((ulong)b[1] << 32) | ((ulong)b[2] << 24) | ((ulong)b[3] << 16) | ((ulong)b[4] << 8) | b[5];

    public static void WriteMac(Span<byte> to, ulong mac)
    {
        for (int i = 0; i < 6; i++)
        {
            to[i] = (byte)(mac >> (40 - (8 * i)));
        }
    }

    /// <summary>Group bit of the first byte: broadcast and multicast.</summary>
    public static bool IsGroup(ulong mac) => ((mac >> 40) & 1) != 0;

    /// <summary>
    /// The MAC a device-side TUN end answers with: the config-space MAC (which the driver's NIC uses) with
    /// the locally-administered bit set, the group bit clear and the last byte inverted, so it is unicast,
    /// local and never the driver's own.
    /// </summary>
    public static ulong DerivedFrom(ReadOnlySpan<byte> configMac)
    {
        ulong m = Mac(configMac);
        m |= 0x02UL << 40;
        m &= ~(0x01UL << 40);
        return m ^ 0xFF;
    }

    /// <summary>Writes destination, source and EtherType.</summary>
    public static void WriteHeader(Span<byte> to, ulong destination, ulong source, ushort type)
    {
        WriteMac(to, destination);
        WriteMac(to[6..], source);
        BinaryPrimitives.WriteUInt16BigEndian(to[12..], type);
    }

    /// <summary>The EtherType for an IP packet by its version nibble: 0 when it is neither IPv4 nor IPv6.</summary>
    public static ushort TypeOfIp(byte firstByte) => (firstByte >> 4) switch
    {
        4 => TypeIPv4,
        6 => TypeIPv6,
        _ => 0,
    };
}
