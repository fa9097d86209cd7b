using System.Buffers.Binary;

namespace Vop.Netstack.Virtio;

/// <summary>Why a frame's virtio_net_hdr was refused.</summary>
public enum HeaderVerdict
{
    Ok,
    Short,        // chain shorter than header + Ethernet header
    BadFlags,     // unknown flag bits, or NEEDS_CSUM without the checksum feature
    BadCsum,      // csum_start + csum_offset + 2 beyond the frame
    BadGso,       // unknown gso_type, GSO not negotiated, gso_size 0, or hdr_len beyond the frame
}

/// <summary>
/// virtio_net_hdr_v1 (12 bytes): flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers.
/// Exactly what a TAP opened with IFF_VNET_HDR and TUNSETVNETHDRSZ 12 reads and writes, so it is carried
/// through unchanged — after validation, because the kernel trusts what we write into the TAP.
/// </summary>
public static class VirtioNetHeader
{
    public const int Size = 12;

    /// <summary>Offset of le16 num_buffers, the last field: frames (mergeable) or 1 (virtio 5.1.6.3.1).</summary>
    public const int NumBuffersOffset = 10;
    public const byte FlagNeedsCsum = 1;
    public const byte FlagDataValid = 2;
    public const byte GsoNone = 0;
    public const byte GsoTcpV4 = 1;
    public const byte GsoTcpV6 = 4;
    public const byte GsoEcn = 0x80;
    private const int EthernetHeader = 14;

    /// <summary>
    /// Checks a header arriving from the peer against the frame length (bytes after the header) and what
    /// the receiving direction negotiated: <paramref name="csumAllowed"/> (CSUM toward the device,
    /// GUEST_CSUM toward the driver) and the TSO bits allowed.
    /// </summary>
    public static HeaderVerdict Validate(ReadOnlySpan<byte> header, ulong frameLength, bool csumAllowed, bool tso4Allowed, bool tso6Allowed, bool ecnAllowed)
    {
        if (header.Length < Size || frameLength < EthernetHeader)
        {
            return HeaderVerdict.Short;
        }

        byte flags = header[0];
        byte gso = header[1];
        ushort hdrLen = BinaryPrimitives.ReadUInt16LittleEndian(header[2..]);
        ushort gsoSize = BinaryPrimitives.ReadUInt16LittleEndian(header[4..]);
        ushort csumStart = BinaryPrimitives.ReadUInt16LittleEndian(header[6..]);
        ushort csumOffset = BinaryPrimitives.ReadUInt16LittleEndian(header[8..]);

        if ((flags & ~(FlagNeedsCsum | FlagDataValid)) != 0)
        {
            return HeaderVerdict.BadFlags;
        }

        if ((flags & FlagNeedsCsum) != 0)
        {
            if (!csumAllowed)
            {
                return HeaderVerdict.BadFlags;
            }

            if ((ulong)csumStart + csumOffset + 2 > frameLength)
            {
                return HeaderVerdict.BadCsum;
            }
        }

        byte kind = (byte)(gso & ~GsoEcn);
        if (kind == GsoNone)
        {
            return (gso & GsoEcn) != 0 ? HeaderVerdict.BadGso : HeaderVerdict.Ok;
        }

        bool allowed = kind switch
        {
            GsoTcpV4 => tso4Allowed,
            GsoTcpV6 => tso6Allowed,
            _ => false,
        };
        if (!allowed || ((gso & GsoEcn) != 0 && !ecnAllowed) || gsoSize == 0 || hdrLen > frameLength || (flags & FlagNeedsCsum) == 0)
        {
            return HeaderVerdict.BadGso;
        }

        return HeaderVerdict.Ok;
    }

    public static bool IsGso(ReadOnlySpan<byte> header) => header.Length >= 2 && header[1] != GsoNone;
}
