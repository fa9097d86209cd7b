using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// The pci link kind: both daemons map one window file through the BAR-mapping code, with polled doorbells.
/// Either end may own the virtio configuration: the PCIe host end as device side, then the endpoint end.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class PciLinkTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PingAndHashedTransferCrossAPolledWindow(bool cardIsDevice)
    {
        using var pair = new LinkPair(kind: "pci", cardIsDevice: cardIsDevice);
        pair.Up();
        (int c1, string o1, _) = pair.Ping(pair.HostNs, pair.CardIp);
        (int c2, string o2, _) = pair.Ping(pair.CardNs, pair.HostIp);
        Assert.True(c1 == 0 && c2 == 0, o1 + o2 + pair.Logs());
        (string src, string dst, long got) = pair.Transfer(pair.HostNs, pair.CardNs, pair.CardIp, 64L << 20, seed: 31);
        Assert.Equal(64L << 20, got);
        Assert.Equal(src, dst);
        (src, dst, got) = pair.Transfer(pair.CardNs, pair.HostNs, pair.HostIp, 64L << 20, seed: 32);
        Assert.Equal(src, dst);

        // The driver side dies; the device side notices by the heartbeat alone and takes it back.
        if (cardIsDevice)
        {
            LinkPair.Kill(pair.Device, 9); // the host namespace's daemon is the driver side here
            Assert.True(Run.WaitUntil(() => !pair.HasCarrier(pair.CardNs, pair.CardTap), TimeSpan.FromSeconds(15)), pair.Logs());
            pair.StartDevice();
        }
        else
        {
            LinkPair.Kill(pair.Driver, 9);
            Assert.True(Run.WaitUntil(() => !pair.HasCarrier(pair.HostNs, pair.HostTap), TimeSpan.FromSeconds(15)), pair.Logs());
            pair.StartDriver();
        }

        pair.WaitCarrier(true);
        Run.In(pair.HostNs, "ip", "addr", "replace", pair.HostIp + "/24", "dev", pair.HostTap);
        Run.In(pair.CardNs, "ip", "addr", "replace", pair.CardIp + "/24", "dev", pair.CardTap);
        (int c3, string o3, _) = pair.Ping(pair.HostNs, pair.CardIp);
        Assert.True(c3 == 0, o3 + pair.Logs());
    }
}
