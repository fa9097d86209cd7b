using System.Text.Json;
using Vop.Appliance.Tests.Infrastructure;
using Vop.Links.Pci;
using Vop.Links.Windows;

namespace Vop.Appliance.Tests;

/// <summary>
/// The ntb link kind with its register profile, on emulated registers: a /dev/shm page both daemons map
/// stands in for the NTB's register BAR (the host's peer set register is the card's status register and
/// the other way round; set is an atomic OR, clear an atomic AND-NOT). Doorbells ring through those
/// registers, not through the window's counters, and each side checks the other's scratchpads before it
/// trusts the window.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class NtbLinkTests
{
    [Theory]
    [InlineData(false, 32)]
    [InlineData(true, 2)] // two bits for three vectors (control, rx, tx): control and tx share bit 0
    public void PingAndHashedTransferRingTheDoorbellRegisters(bool cardIsDevice, int bits)
    {
        using var pair = new LinkPair(kind: "ntb", cardIsDevice: cardIsDevice, doorbellBits: bits);
        pair.Up();
        (int c1, string o1, _) = pair.Ping(pair.HostNs, pair.CardIp);
        (int c2, string o2, _) = pair.Ping(pair.CardNs, pair.HostIp);
        Assert.True(c1 == 0 && c2 == 0, o1 + o2 + pair.Logs());
        (string src, string dst, long got) = pair.Transfer(pair.HostNs, pair.CardNs, pair.CardIp, 32L << 20, seed: 41);
        Assert.Equal(32L << 20, got);
        Assert.Equal(src, dst);
        (src, dst, got) = pair.Transfer(pair.CardNs, pair.HostNs, pair.HostIp, 32L << 20, seed: 42);
        Assert.Equal(32L << 20, got);
        Assert.Equal(src, dst);

        // Both daemons' queues were woken by doorbells (vop status -j: doorbells received per queue)...
        (int code, string json, string err) = Run.In(null, Run.Vop("status", "-j", "--interval", "0.2", "--run-dir", pair.RunDir));
        Assert.True(code == 0, err);
        using JsonDocument doc = JsonDocument.Parse(json);
        foreach (JsonElement daemon in doc.RootElement.GetProperty("daemons").EnumerateArray())
        {
            JsonElement link = daemon.GetProperty("links")[0];
            Assert.Equal("ntb", link.GetProperty("kind").GetString());
            long doorbells = link.GetProperty("devices").EnumerateArray().SelectMany(d => d.GetProperty("queues").EnumerateArray()).Sum(q => q.GetProperty("doorbells").GetInt64());
            Assert.True(doorbells > 0, json);
        }

        // ...and none of them came through the window's doorbell counters, which stay zero: every ring was a
        // doorbell register write. Each side masked the bits it polls and published its scratchpads.
        using (var window = SharedWindow.OpenFile(pair.WindowFile, 0, 64UL << 20, create: false))
        {
            for (ulong off = 0x200; off < 0x400; off += 4)
            {
                Assert.Equal(0u, window.Accessor.ReadU32(off));
            }
        }

        using var regs = SharedWindow.OpenFile(pair.RegisterFile, 0, 4096, create: false);
        ulong valid = (1UL << bits) - 1;
        Assert.Equal(valid, regs.Accessor.ReadU32(LinkPair.RegMaskHost));
        Assert.Equal(valid, regs.Accessor.ReadU32(LinkPair.RegMaskCard));
        Assert.Equal(NtbHandshake.Magic, regs.Accessor.ReadU32(LinkPair.SpadHost));
        Assert.Equal(NtbHandshake.Magic, regs.Accessor.ReadU32(LinkPair.SpadCard));
    }

    [Fact]
    public void AMismatchedScratchpadIsRefusedAndTheLinkRecoversWhenFixed()
    {
        using var pair = new LinkPair(kind: "ntb", doorbellBits: 32);
        pair.Up();
        (int c0, string o0, _) = pair.Ping(pair.CardNs, pair.HostIp);
        Assert.True(c0 == 0, o0 + pair.Logs());

        // The card (driver side) reads the host's scratchpads from its local ones. A peer keeps writing a wrong
        // magic there (as fast as it can, so the host's own republishing after the driver side left is
        // overwritten at once): the card refuses, in one line, counted once, and its link stays down.
        using var regs = SharedWindow.OpenFile(pair.RegisterFile, 0, 4096, create: false);
        WindowAccessor r = regs.Accessor;
        using var stop = new CancellationTokenSource();
        var hostile = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                r.WriteU32Release(LinkPair.SpadCard, 0x0BADF00D);
                Thread.SpinWait(20);
            }
        });
        hostile.Start();
        try
        {
            Assert.True(Run.WaitUntil(() => !pair.HasCarrier(pair.CardNs, pair.CardTap), TimeSpan.FromSeconds(10)), pair.Logs());
            Thread.Sleep(5000); // the host notices the driver side gone and lays the window out afresh meanwhile
            Assert.False(pair.HasCarrier(pair.CardNs, pair.CardTap), pair.Logs());
        }
        finally
        {
            stop.Cancel();
            hostile.Join();
        }

        string card = File.ReadAllText(Path.Combine(pair.Dir, "card.log"));
        string line = "scratchpad 0 reads 0x0badf00d, not vop's magic 0x4e504f56: these registers are not a vop peer's";
        Assert.True(card.Split('\n').Count(l => l.Contains(line, StringComparison.Ordinal)) == 1, pair.Logs());
        (int mc, string scrape, string me) = Run.In(pair.CardNs, Run.NetProbe("http-get", "http://127.0.0.1:9465/metrics"));
        Assert.True(mc == 0, me);
        Assert.Contains("vop_peer_refusals_total{link=\"host\",reason=\"bad_scratchpad\"} 1", scrape);

        // Fixed: the magic is right again (the other scratchpads are the host's latest); the link comes back.
        r.WriteU32Release(LinkPair.SpadCard, NtbHandshake.Magic);
        pair.WaitCarrier(true);
        Run.In(pair.HostNs, "ip", "addr", "replace", pair.HostIp + "/24", "dev", pair.HostTap);
        Run.In(pair.CardNs, "ip", "addr", "replace", pair.CardIp + "/24", "dev", pair.CardTap);
        (int c3, string o3, _) = pair.Ping(pair.CardNs, pair.HostIp);
        Assert.True(c3 == 0, o3 + pair.Logs());
        Assert.Contains("scratchpads match again", File.ReadAllText(Path.Combine(pair.Dir, "card.log")));
    }
}
