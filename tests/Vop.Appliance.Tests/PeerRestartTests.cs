using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// Either side may die (SIGKILL) or stop (SIGTERM) and come back; the other side recovers by itself: its
/// TAP shows NO-CARRIER meanwhile, then carrier and traffic return without touching it.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class PeerRestartTests
{
    [Theory]
    [InlineData(9)]
    [InlineData(15)]
    public void DriverSideRestartRecovers(int signal)
    {
        using var pair = new LinkPair();
        pair.Up();
        long rssBefore = LinkPair.RssAnonKb(pair.Device!);
        for (int round = 0; round < 3; round++)
        {
            LinkPair.Kill(pair.Driver, signal);
            Assert.True(Run.WaitUntil(() => !pair.HasCarrier(pair.HostNs, pair.HostTap), TimeSpan.FromSeconds(10)), "host TAP kept carrier after the card side died\n" + pair.Logs());
            Assert.Contains("NO-CARRIER", Run.In(pair.HostNs, "ip", "link", "show", pair.HostTap).Out);

            pair.StartDriver();
            Assert.True(Run.WaitUntil(() => pair.HasCarrier(pair.HostNs, pair.HostTap) && pair.TapExists(pair.CardNs, pair.CardTap) && pair.HasCarrier(pair.CardNs, pair.CardTap), TimeSpan.FromSeconds(30)), "carrier did not return\n" + pair.Logs());
            Run.In(pair.CardNs, "ip", "addr", "replace", pair.CardIp + "/24", "dev", pair.CardTap);
            (int code, string output, _) = pair.Ping(pair.HostNs, pair.CardIp, count: 3);
            Assert.True(code == 0, $"round {round}: {output}\n{pair.Logs()}");
        }

        (string src, string dst, long got) = pair.Transfer(pair.HostNs, pair.CardNs, pair.CardIp, 64L << 20, seed: 3);
        Assert.Equal(src, dst);
        Assert.Equal(64L << 20, got);
        long rssAfter = LinkPair.RssAnonKb(pair.Device!);
        Assert.True(rssAfter < 100 * 1024, $"device side RssAnon {rssAfter} kB");
        Assert.True(rssAfter < rssBefore + (32 * 1024), $"device side RssAnon grew from {rssBefore} to {rssAfter} kB across restarts");
    }

    [Theory]
    [InlineData(9)]
    [InlineData(15)]
    public void DeviceSideRestartRecovers(int signal)
    {
        using var pair = new LinkPair();
        pair.Up();
        for (int round = 0; round < 2; round++)
        {
            LinkPair.Kill(pair.Device, signal);
            Assert.True(Run.WaitUntil(() => !pair.HasCarrier(pair.CardNs, pair.CardTap), TimeSpan.FromSeconds(10)), "card TAP kept carrier after the host side died\n" + pair.Logs());

            pair.StartDevice();
            Assert.True(Run.WaitUntil(() => pair.TapExists(pair.HostNs, pair.HostTap) && pair.HasCarrier(pair.HostNs, pair.HostTap) && pair.HasCarrier(pair.CardNs, pair.CardTap), TimeSpan.FromSeconds(30)), "carrier did not return\n" + pair.Logs());
            Run.In(pair.HostNs, "ip", "addr", "replace", pair.HostIp + "/24", "dev", pair.HostTap);
            (int code, string output, _) = pair.Ping(pair.CardNs, pair.HostIp, count: 3);
            Assert.True(code == 0, $"round {round}: {output}\n{pair.Logs()}");
        }

        (string src, string dst, long got) = pair.Transfer(pair.CardNs, pair.HostNs, pair.HostIp, 64L << 20, seed: 4);
        Assert.Equal(src, dst);
        Assert.Equal(64L << 20, got);
    }
}
