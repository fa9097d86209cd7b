using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using PacketDotNet;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Tests.Infrastructure;

/// <summary>Real Ethernet/IPv4 frames (PacketDotNet) and the virtio_net_hdr_v1 that goes before them on a TAP.</summary>
internal static class Frames
{
    public const int EthernetIpUdp = 14 + 20 + 8;
    public const int EthernetIpTcp = 14 + 20 + 20;

    private static readonly PhysicalAddress s_host = PhysicalAddress.Parse("02-00-00-00-00-01");
    private static readonly PhysicalAddress s_card = PhysicalAddress.Parse("02-00-00-00-00-02");

    /// <summary>A UDP/IPv4 frame with a <paramref name="payload"/>-byte patterned payload (seeded, so frames differ).</summary>
    public static byte[] Udp(int payload, int seed)
    {
        var udp = new UdpPacket((ushort)(40000 + seed), 9) { PayloadData = Pattern(payload, seed) };
        var ip = new IPv4Packet(IPAddress.Parse("10.0.0.1"), IPAddress.Parse("10.0.0.2")) { PayloadPacket = udp, TimeToLive = 64 };
        var eth = new EthernetPacket(s_host, s_card, EthernetType.IPv4) { PayloadPacket = ip };
        ip.UpdateCalculatedValues();
        udp.UpdateCalculatedValues();
        ip.UpdateIPChecksum();
        udp.UpdateUdpChecksum();
        return eth.Bytes;
    }

    /// <summary>A TCP/IPv4 frame as a TSO sender hands it to a TAP: one 64 KiB-class segment, checksum left to offload.</summary>
    public static byte[] Tcp(int payload, int seed)
    {
        var tcp = new TcpPacket(5001, (ushort)(40000 + seed)) { PayloadData = Pattern(payload, seed), Acknowledgment = true, SequenceNumber = (uint)seed * 1000, WindowSize = 512 };
        var ip = new IPv4Packet(IPAddress.Parse("10.0.0.2"), IPAddress.Parse("10.0.0.1")) { PayloadPacket = tcp, TimeToLive = 64 };
        var eth = new EthernetPacket(s_card, s_host, EthernetType.IPv4) { PayloadPacket = ip };
        ip.UpdateCalculatedValues();
        tcp.UpdateCalculatedValues();
        ip.UpdateIPChecksum();
        return eth.Bytes;
    }

    /// <summary>The UDP payload of a frame, parsed back with PacketDotNet (null when it is not UDP/IPv4).</summary>
    public static byte[]? UdpPayload(ReadOnlySpan<byte> frame) =>
        Packet.ParsePacket(LinkLayers.Ethernet, frame.ToArray()).Extract<UdpPacket>()?.PayloadData;

    /// <summary>header (12 bytes) + frame, one TAP message.</summary>
    public static byte[] WithHeader(ReadOnlySpan<byte> header, ReadOnlySpan<byte> frame)
    {
        var m = new byte[VirtioNetHeader.Size + frame.Length];
        header.CopyTo(m);
        frame.CopyTo(m.AsSpan(VirtioNetHeader.Size));
        return m;
    }

    /// <summary>A plain header: no offload; <paramref name="numBuffers"/> is whatever the writer left there.</summary>
    public static byte[] PlainHeader(ushort numBuffers = 0)
    {
        var h = new byte[VirtioNetHeader.Size];
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(10), numBuffers);
        return h;
    }

    /// <summary>A TSO header for a TCP/IPv4 frame: NEEDS_CSUM at the TCP checksum, GSO_TCPV4, MSS 1448.</summary>
    public static byte[] Tso4Header()
    {
        var h = new byte[VirtioNetHeader.Size];
        h[0] = VirtioNetHeader.FlagNeedsCsum;
        h[1] = VirtioNetHeader.GsoTcpV4;
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(2), EthernetIpTcp);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(4), 1448);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(6), 14 + 20);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(8), 16);
        return h;
    }

    /// <summary>A checksum-offload header whose csum_start lies past the frame: refused by validation.</summary>
    public static byte[] CsumPastFrameHeader(int frameLength)
    {
        var h = new byte[VirtioNetHeader.Size];
        h[0] = VirtioNetHeader.FlagNeedsCsum;
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(6), (ushort)frameLength);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(8), 6);
        return h;
    }

    /// <summary><paramref name="message"/> with num_buffers (bytes 10..11) replaced, as the receiving device writes it.</summary>
    public static byte[] WithNumBuffers(byte[] message, ushort numBuffers)
    {
        byte[] copy = (byte[])message.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(10), numBuffers);
        return copy;
    }

    public static ushort NumBuffers(ReadOnlySpan<byte> message) => BinaryPrimitives.ReadUInt16LittleEndian(message[10..]);

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }
}
