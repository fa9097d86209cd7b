using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>virtio-net between two vop daemons in two network namespaces: real TAPs, real kernel stacks.</summary>
[Collection(EndToEnd.Name)]
public sealed class NetEndToEndTests
{
    [Fact]
    public void PingCrossesBothWays()
    {
        using var pair = new LinkPair();
        pair.Up();
        (int c1, string o1, _) = pair.Ping(pair.HostNs, pair.CardIp);
        (int c2, string o2, _) = pair.Ping(pair.CardNs, pair.HostIp);
        Assert.True(c1 == 0, o1 + pair.Logs());
        Assert.True(c2 == 0, o2 + pair.Logs());
        Assert.Contains(" 0% packet loss", o1);
    }

    [Fact]
    public void TcpTransfersOf256MiBArriveIntactEachWayAsGsoFrames()
    {
        // With a console device on the same link: its pump must not steal the net pump's doorbells.
        using var pair = new LinkPair(consoleCommand: ["/bin/sh", "-i"]);
        pair.Up();
        const long Bytes = 256L << 20;

        var before = pair.Counters(pair.CardNs, pair.CardTap);
        (string src, string dst, long got) = pair.Transfer(pair.HostNs, pair.CardNs, pair.CardIp, Bytes, seed: 7);
        Assert.Equal(Bytes, got);
        Assert.Equal(src, dst);
        var after = pair.Counters(pair.CardNs, pair.CardTap);

        // The card's TAP received the data as super-frames: far more bytes per packet than the 1500 MTU.
        long bytesPerPacket = (after.RxBytes - before.RxBytes) / Math.Max(1, after.RxPackets - before.RxPackets);
        Assert.True(bytesPerPacket > 3000, $"{bytesPerPacket} bytes per packet: TSO frames did not cross whole");

        var hostBefore = pair.Counters(pair.HostNs, pair.HostTap);
        (src, dst, got) = pair.Transfer(pair.CardNs, pair.HostNs, pair.HostIp, Bytes, seed: 8);
        Assert.Equal(Bytes, got);
        Assert.Equal(src, dst);
        var hostAfter = pair.Counters(pair.HostNs, pair.HostTap);
        long hostBytesPerPacket = (hostAfter.RxBytes - hostBefore.RxBytes) / Math.Max(1, hostAfter.RxPackets - hostBefore.RxPackets);
        Assert.True(hostBytesPerPacket > 3000, $"{hostBytesPerPacket} bytes per packet toward the host");

        // Both pumps ran hot for 512 MiB and allocated nothing after warm-up (logged at a clean stop).
        pair.StopAndAssertPumpsAllocatedNothing();
    }

    [Fact]
    public void OffloadsAreOnForBothTaps()
    {
        using var pair = new LinkPair();
        pair.Up();
        foreach ((string ns, string tap) in new[] { (pair.HostNs, pair.HostTap), (pair.CardNs, pair.CardTap) })
        {
            (int code, string output, string err) = Run.In(ns, "ethtool", "-k", tap);
            Assert.True(code == 0, output + err);
            Assert.Contains("tx-checksumming: on", output);
            Assert.Contains("tcp-segmentation-offload: on", output);
        }
    }

    [Fact]
    public void Mtu9000CarriesJumboFramesUnfragmented()
    {
        using var pair = new LinkPair(mtu: 9000);
        pair.Up();
        (int code, string output, string err) = Run.In(pair.CardNs, "ip", "link", "show", pair.CardTap);
        Assert.True(code == 0, err);
        Assert.Contains("mtu 9000", output); // the driver side took the MTU from config space
        (int c1, string o1, _) = pair.Ping(pair.HostNs, pair.CardIp, size: 8972, dontFragment: true);
        (int c2, string o2, _) = pair.Ping(pair.CardNs, pair.HostIp, size: 8972, dontFragment: true);
        Assert.True(c1 == 0, o1 + pair.Logs());
        Assert.True(c2 == 0, o2 + pair.Logs());
        (string src, string dst, long got) = pair.Transfer(pair.HostNs, pair.CardNs, pair.CardIp, 64L << 20, seed: 9);
        Assert.Equal(64L << 20, got);
        Assert.Equal(src, dst);
    }

    [Fact]
    public void CardMacComesFromTheDeviceConfig()
    {
        using var pair = new LinkPair();
        pair.Up();
        (_, string output, _) = Run.In(pair.CardNs, "ip", "link", "show", pair.CardTap);
        Assert.Contains("52:54:00:0e:2e:01", output);
    }
}
