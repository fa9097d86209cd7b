using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using PacketDotNet;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Netstack.Tests.Infrastructure;
using Vop.Netstack.Tun;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Tests;

/// <summary>
/// A device-side pump in TUN mode between a frame pipe playing the TUN (IP packets after the vnet header)
/// and a test driver: the link side sees Ethernet frames, the TUN side bare packets, checksum offsets move
/// by 14 each way, ARP and neighbour solicitations are answered, the rest dropped with a counted reason.
/// </summary>
public sealed class TunFramingTests
{
    private const ulong Features = VirtioFeatures.Version1 | VirtioFeatures.EventIdx | NetFeatures.Csum | NetFeatures.GuestCsum |
        NetFeatures.HostTso4 | NetFeatures.GuestTso4;

    private static readonly byte[] s_own = [0x02, 0, 0, 0, 0, 0xFE];   // DevicePumpRig.Mac, derived
    private static readonly byte[] s_driver = DevicePumpRig.Mac;

    private static DevicePumpRig Rig() => new DevicePumpRig(Features, tun: TunAddresses.ForDevice(DevicePumpRig.Mac)).Start();

    [Fact]
    public void DerivedMacIsLocalUnicastAndNotTheDriversOwn()
    {
        byte[] m = new byte[6];
        Ethernet.WriteMac(m, Ethernet.DerivedFrom([0x52, 0x54, 0x00, 0x0e, 0x2e, 0x01]));
        Assert.Equal(new byte[] { 0x52, 0x54, 0x00, 0x0e, 0x2e, 0xfe }, m);
        Ethernet.WriteMac(m, Ethernet.DerivedFrom([0x01, 0, 0, 0, 0, 0xFF]));
        Assert.Equal(new byte[] { 0x02, 0, 0, 0, 0, 0 }, m);
    }

    [Fact]
    public void TunPacketReachesTheDriverAsAFrameWithTheHeaderInTheHoleAndOffsetsMovedBy14()
    {
        using DevicePumpRig rig = Rig();
        byte[] frame = Frames.Udp(700, 3);
        byte[] packet = frame[Ethernet.HeaderSize..];
        byte[] header = CsumHeader(csumStart: 20, csumOffset: 6, hdrLen: 28);
        rig.PostRx(12, 8, 2048); // the 14-byte hole spans the second and third descriptor
        rig.Pipe.Send(Frames.WithHeader(header, packet));
        (_, byte[] seen) = rig.ReapRx();

        Assert.Equal(VirtioNetHeader.Size + frame.Length, seen.Length);
        Assert.Equal(34, BinaryPrimitives.ReadUInt16LittleEndian(seen.AsSpan(6)));  // csum_start from the Ethernet header
        Assert.Equal(42, BinaryPrimitives.ReadUInt16LittleEndian(seen.AsSpan(2)));  // hdr_len likewise
        Assert.Equal(1, Frames.NumBuffers(seen));
        Assert.Equal(s_driver, seen[12..18]);                                          // to the driver's config-space MAC
        Assert.Equal(s_own, seen[18..24]);                                             // from the TUN end's
        Assert.Equal(new byte[] { 0x08, 0x00 }, seen[24..26]);
        Assert.Equal(packet, seen[26..]);
    }

    /// <summary>With MRG_RXBUF (a vhost-user guest facing a device-side TUN end): the hole is left in the held buffers.</summary>
    [Fact]
    public void TunPacketLandsFramedInMergeableBuffers()
    {
        ulong features = VirtioFeatures.Version1 | VirtioFeatures.EventIdx | NetFeatures.Csum | NetFeatures.GuestCsum | NetFeatures.MrgRxbuf;
        using DevicePumpRig rig = new DevicePumpRig(features, tun: TunAddresses.ForDevice(DevicePumpRig.Mac)).Start();
        byte[] frame = Frames.Udp(700, 9);
        rig.PostRx(12, 8, 1000);
        rig.PostRx(1000);
        rig.Pipe.Send(Frames.WithHeader(Frames.PlainHeader(), frame.AsSpan(Ethernet.HeaderSize)));
        (UsedElement used, byte[] seen) = rig.ReapRx();
        Assert.Equal((uint)(VirtioNetHeader.Size + frame.Length), used.Length);
        Assert.Equal(1, Frames.NumBuffers(seen));
        Assert.Equal(s_own, seen[18..24]);
        Assert.Equal(frame[12..], seen[24..]);
    }

    [Fact]
    public void Ipv6PacketGetsTheIpv6EtherTypeAndANonIpPacketIsDropped()
    {
        using DevicePumpRig rig = Rig();
        byte[] v6 = new byte[60];
        v6[0] = 0x60;
        rig.PostRx(2048);
        rig.Pipe.Send(Frames.WithHeader(Frames.PlainHeader(), v6));
        (_, byte[] seen) = rig.ReapRx();
        Assert.Equal(new byte[] { 0x86, 0xDD }, seen[24..26]);

        byte[] notIp = new byte[60];
        notIp[0] = 0x20;
        rig.PostRx(2048);
        rig.Pipe.Send(Frames.WithHeader(Frames.PlainHeader(), notIp));
        Wait.Until(() => rig.RxStats.Drops[(int)NetDropReason.NotIp] == 1, "the non-IP packet counted");
    }

    [Fact]
    public void FrameFromTheDriverReachesTheTunWithoutItsEthernetHeaderAndOffsetsMovedBack()
    {
        using DevicePumpRig rig = Rig();
        byte[] frame = ToOwn(Frames.Udp(900, 4));
        byte[] message = Frames.WithHeader(CsumHeader(csumStart: 34, csumOffset: 6, hdrLen: 42), frame);
        rig.PostTx(message, 6, 20); // header split, Ethernet header split
        byte[] seen = rig.Pipe.Receive();
        rig.ReapAllTx();

        Assert.Equal(VirtioNetHeader.Size + frame.Length - Ethernet.HeaderSize, seen.Length);
        Assert.Equal(20, BinaryPrimitives.ReadUInt16LittleEndian(seen.AsSpan(6)));
        Assert.Equal(28, BinaryPrimitives.ReadUInt16LittleEndian(seen.AsSpan(2)));
        Assert.Equal(frame[Ethernet.HeaderSize..], seen[VirtioNetHeader.Size..]);
        Assert.Equal(0, rig.TxStats.Drops.Sum());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(10)]
    [InlineData(13)]
    public void ChecksumStartInsideTheEthernetHeaderIsDroppedAsBadHeader(ushort csumStart)
    {
        using DevicePumpRig rig = Rig();
        rig.PostTx(Frames.WithHeader(CsumHeader(csumStart, 6, 0), ToOwn(Frames.Udp(100, 5))));
        rig.ReapAllTx();
        Assert.Equal(1, rig.TxStats.Drops[(int)NetDropReason.BadHeader]);
        Assert.Null(rig.Pipe.TryReceive(TimeSpan.FromMilliseconds(200)));
        Assert.Null(rig.Pump.Crash);
    }

    [Fact]
    public void NonIpFrameAndUnicastForAnotherMacAreDroppedWithTheirReasons()
    {
        using DevicePumpRig rig = Rig();
        byte[] other = ToOwn(Frames.Udp(100, 6));
        other[12] = 0x88;
        other[13] = 0xB5;
        rig.PostTx(Frames.WithHeader(Frames.PlainHeader(), other));
        byte[] stranger = Frames.Udp(100, 7); // to 02:00:00:00:00:02, not the TUN end
        rig.PostTx(Frames.WithHeader(Frames.PlainHeader(), stranger));
        rig.ReapAllTx();
        Assert.Equal(1, rig.TxStats.Drops[(int)NetDropReason.NotIp]);
        Assert.Equal(1, rig.TxStats.Drops[(int)NetDropReason.OtherHost]);
        Assert.Null(rig.Pipe.TryReceive(TimeSpan.FromMilliseconds(200)));
        Assert.Equal("not_ip", NetDropReason.NotIp.Label());
    }

    [Fact]
    public void ArpRequestIsAnsweredWithTheTunEndsMacAndTheSenderIsLearned()
    {
        using DevicePumpRig rig = Rig();
        var asker = PhysicalAddress.Parse("02-AA-00-00-00-07");
        var arp = new ArpPacket(ArpOperation.Request, PhysicalAddress.Parse("00-00-00-00-00-00"), IPAddress.Parse("10.0.0.2"), asker, IPAddress.Parse("10.0.0.1"));
        var eth = new EthernetPacket(asker, PhysicalAddress.Parse("FF-FF-FF-FF-FF-FF"), EthernetType.Arp) { PayloadPacket = arp };
        rig.PostRx(2048);
        rig.PostTx(Frames.WithHeader(Frames.PlainHeader(), eth.Bytes));
        (_, byte[] seen) = rig.ReapRx();
        rig.ReapAllTx();

        var reply = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, seen[VirtioNetHeader.Size..]);
        ArpPacket answer = reply.Extract<ArpPacket>();
        Assert.Equal(asker, reply.DestinationHardwareAddress);
        Assert.Equal(new PhysicalAddress(s_own), reply.SourceHardwareAddress);
        Assert.Equal(ArpOperation.Response, answer.Operation);
        Assert.Equal(new PhysicalAddress(s_own), answer.SenderHardwareAddress);
        Assert.Equal(IPAddress.Parse("10.0.0.2"), answer.SenderProtocolAddress);
        Assert.Equal(asker, answer.TargetHardwareAddress);
        Assert.Equal(IPAddress.Parse("10.0.0.1"), answer.TargetProtocolAddress);
        Assert.Null(rig.Pipe.TryReceive(TimeSpan.FromMilliseconds(100)));

        // Frames from the TUN now go to the asker.
        rig.PostRx(2048);
        rig.Pipe.Send(Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(100, 8).AsSpan(Ethernet.HeaderSize)));
        (_, seen) = rig.ReapRx();
        Assert.Equal(asker.GetAddressBytes(), seen[12..18]);
    }

    [Fact]
    public void GratuitousArpAndProbesAreNotAnswered()
    {
        using DevicePumpRig rig = Rig();
        var asker = PhysicalAddress.Parse("02-AA-00-00-00-07");
        foreach (string sender in new[] { "10.0.0.1", "0.0.0.0" })
        {
            var arp = new ArpPacket(ArpOperation.Request, PhysicalAddress.Parse("00-00-00-00-00-00"), IPAddress.Parse("10.0.0.1"), asker, IPAddress.Parse(sender));
            var eth = new EthernetPacket(asker, PhysicalAddress.Parse("FF-FF-FF-FF-FF-FF"), EthernetType.Arp) { PayloadPacket = arp };
            rig.PostTx(Frames.WithHeader(Frames.PlainHeader(), eth.Bytes));
        }

        rig.ReapAllTx();
        Assert.Equal(2, rig.TxStats.Drops[(int)NetDropReason.NotIp]);
        Assert.Equal(0, rig.Pipe.Tap.Framing!.Queued);
    }

    [Fact]
    public void NeighbourSolicitationIsAnsweredWithAValidAdvertisementAndDadIsNot()
    {
        using DevicePumpRig rig = Rig();
        byte[] asker = [0x02, 0xAA, 0, 0, 0, 0x09];
        byte[] source = IPAddress.Parse("fd00::1").GetAddressBytes();
        byte[] target = IPAddress.Parse("fd00::2").GetAddressBytes();
        rig.PostRx(2048);
        rig.PostTx(Frames.WithHeader(Frames.PlainHeader(), Solicitation(asker, source, target)));
        (_, byte[] seen) = rig.ReapRx();
        rig.ReapAllTx();

        byte[] na = seen[VirtioNetHeader.Size..];
        Assert.Equal(86, na.Length);
        Assert.Equal(asker, na[0..6]);
        Assert.Equal(s_own, na[6..12]);
        Assert.Equal(new byte[] { 0x86, 0xDD }, na[12..14]);
        Assert.Equal(255, na[21]);                        // hop limit
        Assert.Equal(target, na[22..38]);                 // from the address asked for
        Assert.Equal(source, na[38..54]);                 // to the asker
        Assert.Equal(136, na[54]);                        // neighbour advertisement
        Assert.Equal(0x60, na[58]);                       // solicited, override
        Assert.Equal(target, na[62..78]);
        Assert.Equal(new byte[] { 2, 1 }, na[78..80]);    // target link-layer address
        Assert.Equal(s_own, na[80..86]);
        Assert.Equal(0xFFFF, OnesComplementSum(na[22..38], na[38..54], na[54..86]));
        Assert.Null(rig.Pipe.TryReceive(TimeSpan.FromMilliseconds(100)));

        // Duplicate address detection (source ::) is consumed, not answered, not counted.
        rig.PostTx(Frames.WithHeader(Frames.PlainHeader(), Solicitation(asker, new byte[16], target)));
        rig.ReapAllTx();
        Assert.Equal(0, rig.Pipe.Tap.Framing!.Queued);
        Assert.Equal(0, rig.TxStats.Drops.Sum());
        Assert.Null(rig.Pipe.TryReceive(TimeSpan.FromMilliseconds(100)));
    }

    /// <summary>Hostile csum_start / hdr_len on either shift: refused or clamped, never wrapped.</summary>
    [Fact]
    public void ShiftRefusesWhatWouldLeaveTheRange()
    {
        byte[] h = CsumHeader(csumStart: 65530, csumOffset: 0, hdrLen: 0);
        Assert.False(TunFraming.Shift(h, Ethernet.HeaderSize));
        h = CsumHeader(csumStart: 13, csumOffset: 0, hdrLen: 0);
        Assert.False(TunFraming.Shift(h, -Ethernet.HeaderSize));
        h = CsumHeader(csumStart: 14, csumOffset: 0, hdrLen: 5);
        Assert.True(TunFraming.Shift(h, -Ethernet.HeaderSize));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(h.AsSpan(6)));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(h.AsSpan(2)));
        h = CsumHeader(csumStart: 0, csumOffset: 0, hdrLen: 65530);
        Assert.False(TunFraming.Shift(h, Ethernet.HeaderSize));
    }

    private static byte[] CsumHeader(ushort csumStart, ushort csumOffset, ushort hdrLen)
    {
        var h = new byte[VirtioNetHeader.Size];
        h[0] = VirtioNetHeader.FlagNeedsCsum;
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(2), hdrLen);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(6), csumStart);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(8), csumOffset);
        return h;
    }

    /// <summary>The frame addressed to the TUN end's MAC.</summary>
    private static byte[] ToOwn(byte[] frame)
    {
        s_own.CopyTo(frame, 0);
        return frame;
    }

    private static byte[] Solicitation(byte[] from, byte[] source, byte[] target)
    {
        var f = new byte[14 + 40 + 32];
        f[0] = 0x33;
        f[1] = 0x33;
        f[2] = 0xFF;
        f[3] = target[13];
        f[4] = target[14];
        f[5] = target[15];
        from.CopyTo(f, 6);
        f[12] = 0x86;
        f[13] = 0xDD;
        f[14] = 0x60;
        f[19] = 32;
        f[20] = 58;
        f[21] = 255;
        source.CopyTo(f, 22);
        new byte[] { 0xFF, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, target[13], target[14], target[15] }.CopyTo(f, 38);
        f[54] = 135;
        target.CopyTo(f, 62);
        f[78] = 1;
        f[79] = 1;
        from.CopyTo(f, 80);
        return f;
    }

    /// <summary>RFC 4443's checksum check: the sum over pseudo-header and message, checksum included, is all ones.</summary>
    private static int OnesComplementSum(byte[] source, byte[] destination, byte[] message)
    {
        long sum = message.Length + 58;
        foreach (byte[] b in new[] { source, destination, message })
        {
            for (int i = 0; i < b.Length; i += 2)
            {
                sum += (b[i] << 8) | (i + 1 < b.Length ? b[i + 1] : 0);
            }
        }

        while ((sum >> 16) != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (int)sum;
    }
}
