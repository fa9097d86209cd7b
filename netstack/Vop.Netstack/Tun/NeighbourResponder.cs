using System.Buffers.Binary;

namespace Vop.Netstack.Tun;

/// <summary>
/// What a TUN end says on the link for its TUN side, which has no MAC and does no ARP: a reply to every
/// ARP request and IPv6 neighbour solicitation the peer sends, naming <c>own</c> as the MAC of the address
/// asked for (a point-to-point link: everything the peer reaches through it is behind this end, as with
/// proxy ARP). Not answered: ARP probes (sender 0.0.0.0), gratuitous ARP (sender = target), duplicate
/// address detection (source ::), anything malformed. Pure functions over the frame's bytes (a stack copy):
/// nothing here reads the window or allocates.
/// </summary>
internal static class NeighbourResponder
{
    public const int MaxReply = Ethernet.HeaderSize + 40 + 32;   // a neighbour advertisement with its TLLA option
    private const int ArpSize = 28;
    private const int Ip6Header = 40;
    private const int SolicitationSize = 24;
    private const byte IcmpV6 = 58;
    private const byte Solicitation = 135;
    private const byte Advertisement = 136;

    /// <summary>The reply to an ARP request for any address, written to <paramref name="reply"/>; 0 when there is none to give.</summary>
    public static int AnswerArp(ReadOnlySpan<byte> frame, ulong own, Span<byte> reply)
    {
        if (frame.Length < Ethernet.HeaderSize + ArpSize || reply.Length < Ethernet.MinFrame)
        {
            return 0;
        }

        ReadOnlySpan<byte> arp = frame.Slice(Ethernet.HeaderSize, ArpSize);
        bool request = BinaryPrimitives.ReadUInt16BigEndian(arp) == 1 && BinaryPrimitives.ReadUInt16BigEndian(arp[2..]) == Ethernet.TypeIPv4 &&
            arp[4] == 6 && arp[5] == 4 && BinaryPrimitives.ReadUInt16BigEndian(arp[6..]) == 1;
        ReadOnlySpan<byte> senderMac = arp.Slice(8, 6);
        ReadOnlySpan<byte> senderIp = arp.Slice(14, 4);
        ReadOnlySpan<byte> targetIp = arp.Slice(24, 4);
        ulong sender = Ethernet.Mac(senderMac);
        if (!request || sender == 0 || Ethernet.IsGroup(sender) || BinaryPrimitives.ReadUInt32BigEndian(senderIp) == 0 || senderIp.SequenceEqual(targetIp))
        {
            return 0;
        }

        reply[..Ethernet.MinFrame].Clear();
        Ethernet.WriteHeader(reply, sender, own, Ethernet.TypeArp);
        Span<byte> r = reply.Slice(Ethernet.HeaderSize, ArpSize);
        arp[..6].CopyTo(r);                                // htype, ptype, hlen, plen as asked
        BinaryPrimitives.WriteUInt16BigEndian(r[6..], 2);  // reply
        Ethernet.WriteMac(r[8..], own);
        targetIp.CopyTo(r[14..]);
        senderMac.CopyTo(r[18..]);
        senderIp.CopyTo(r[24..]);
        return Ethernet.MinFrame;
    }

    /// <summary>True when the IPv6 frame is an ICMPv6 neighbour solicitation (answered or not, it is not for the TUN).</summary>
    public static bool IsSolicitation(ReadOnlySpan<byte> frame) =>
        frame.Length >= Ethernet.HeaderSize + Ip6Header + 1 &&
        frame[Ethernet.HeaderSize + 6] == IcmpV6 &&
        frame[Ethernet.HeaderSize + Ip6Header] == Solicitation;

    /// <summary>The neighbour advertisement answering a solicitation, written to <paramref name="reply"/>; 0 when there is none to give.</summary>
    public static int AnswerSolicitation(ReadOnlySpan<byte> frame, ulong own, Span<byte> reply)
    {
        if (!IsSolicitation(frame) || frame.Length < Ethernet.HeaderSize + Ip6Header + SolicitationSize || reply.Length < MaxReply)
        {
            return 0;
        }

        ReadOnlySpan<byte> ip = frame[Ethernet.HeaderSize..];
        ReadOnlySpan<byte> source = ip.Slice(8, 16);
        ReadOnlySpan<byte> icmp = ip[Ip6Header..];
        ReadOnlySpan<byte> target = icmp.Slice(8, 16);
        ulong requester = Ethernet.Mac(frame.Slice(6, 6));
        bool valid = (ip[0] >> 4) == 6 && BinaryPrimitives.ReadUInt16BigEndian(ip[4..]) >= SolicitationSize && ip[7] == 255 && icmp[1] == 0 &&
            target[0] != 0xFF && !Ethernet.IsGroup(requester) && requester != 0;
        if (!valid || source.IndexOfAnyExcept((byte)0) < 0)
        {
            return 0; // malformed, or duplicate address detection (source ::): the peer's own address is not ours to claim
        }

        Span<byte> r = reply[..MaxReply];
        r.Clear();
        Ethernet.WriteHeader(r, requester, own, Ethernet.TypeIPv6);
        Span<byte> rip = r[Ethernet.HeaderSize..];
        rip[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(rip[4..], 32);
        rip[6] = IcmpV6;
        rip[7] = 255;
        target.CopyTo(rip[8..]);        // from the address asked for
        source.CopyTo(rip[24..]);       // to the solicitation's source
        Span<byte> na = rip[Ip6Header..];
        na[0] = Advertisement;
        na[4] = 0x60;                   // solicited, override
        target.CopyTo(na[8..]);
        na[24] = 2;                     // target link-layer address option, 8 bytes
        na[25] = 1;
        Ethernet.WriteMac(na[26..], own);
        BinaryPrimitives.WriteUInt16BigEndian(na[2..], IcmpV6Checksum(rip[8..24], rip[24..40], na[..32]));
        return MaxReply;
    }

    /// <summary>RFC 4443 2.3: one's complement sum over the pseudo-header and the message (checksum field zero).</summary>
    public static ushort IcmpV6Checksum(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, ReadOnlySpan<byte> message)
    {
        ulong sum = (ulong)message.Length + IcmpV6;
        sum += Sum16(source) + Sum16(destination) + Sum16(message);
        while ((sum >> 16) != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        ushort c = (ushort)~sum;
        return c;
    }

    private static ulong Sum16(ReadOnlySpan<byte> b)
    {
        ulong s = 0;
        int i = 0;
        for (; i + 1 < b.Length; i += 2)
        {
            s += BinaryPrimitives.ReadUInt16BigEndian(b[i..]);
        }

        if (i < b.Length)
        {
            s += (ulong)b[i] << 8;
        }

        return s;
    }
}
