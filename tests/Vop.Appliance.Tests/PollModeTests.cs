using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// A link's poll and cpus keys on real daemons: a busy-polling host pinned to CPU 0 facing a card that sleeps
/// as soon as it is idle. Both carry traffic intact; the busy side never arms notifications, so the sleeper
/// never rings it, while the sleeper is rung; the busy pump threads run only on CPU 0 and allocate nothing.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class PollModeTests
{
    [Fact]
    public void BusyPinnedHostAndSleepingCardCarryTrafficAndOnlyTheSleeperIsRung()
    {
        using var pair = new LinkPair(
            hostLink: new Dictionary<string, object> { ["poll"] = "busy", ["cpus"] = "0" },
            cardLink: new Dictionary<string, object> { ["poll"] = "sleep" });
        pair.Up();

        (int code, string text, string err) = Run.In(null, Run.Vop("status", "--interval", "0.1", "--run-dir", pair.RunDir));
        Assert.True(code == 0, text + err);
        Assert.Contains("link card0 (loopback): device side, UP, resets 0, poll busy, cpus 0\n", text);
        Assert.Contains("link host (loopback): driver side, UP, resets 0, poll sleep\n", text);

        // Every pump thread of the host daemon runs on CPU 0 only; the card's are not pinned.
        Assert.Equal(["0"], PumpCpus(pair.Device!));
        Assert.DoesNotContain("0", PumpCpus(pair.Driver!));

        var before = Notifications(pair);
        const long Bytes = 32L << 20;
        (string src, string dst, long got) = pair.Transfer(pair.HostNs, pair.CardNs, pair.CardIp, Bytes, seed: 31);
        Assert.Equal(Bytes, got);
        Assert.Equal(src, dst);
        (src, dst, got) = pair.Transfer(pair.CardNs, pair.HostNs, pair.HostIp, Bytes, seed: 32);
        Assert.Equal(Bytes, got);
        Assert.Equal(src, dst);
        // Many small round trips: each is a busy loop on both pumps (the allocation check needs 1,000 warm-up loops).
        (int ping, string pingOut, string pingErr) = Run.In(pair.CardNs, "ping", "-f", "-q", "-c", "3000", pair.HostIp);
        Assert.True(ping == 0 && pingOut.Contains(" 0% packet loss", StringComparison.Ordinal), pingOut + pingErr + pair.Logs());
        var after = Notifications(pair);

        long cardSent = after["card"].Sent - before["card"].Sent;
        long hostSent = after["host"].Sent - before["host"].Sent;
        long packets = after["card"].Packets - before["card"].Packets;
        Assert.True(packets > 1_000, $"{packets} packets on the card's queues");

        // The busy host never asks to be notified (its event index stays put: one notification per 65,536
        // of the card's publishes at most); the sleeping card asks each time it goes to sleep.
        Assert.True(cardSent <= (packets / 10_000) + 4, $"the card rang the busy host {cardSent} times for {packets} packets");
        Assert.True(hostSent > 0, "the host never rang the sleeping card");

        LinkPair.Kill(pair.Driver, 15);
        LinkPair.Kill(pair.Device, 15);
        string logs = pair.Logs();
        MatchCollection m = Regex.Matches(logs, @"pump stopped after (\d+) busy loops; allocated (-?\d+) bytes after warm-up");
        Assert.True(m.Count >= 2, logs);
        Assert.All(m, x => Assert.Equal("0", x.Groups[2].Value));
        Assert.DoesNotContain("could not pin", logs);
    }

    /// <summary>The distinct Cpus_allowed_list values of a daemon's net pump threads (named vop-net-TAP).</summary>
    private static List<string> PumpCpus(Process daemon)
    {
        var lists = new SortedSet<string>();
        foreach (string task in Directory.GetDirectories($"/proc/{daemon.Id}/task"))
        {
            if (File.ReadAllText(Path.Combine(task, "comm")).StartsWith("vop-net", StringComparison.Ordinal))
            {
                lists.Add(File.ReadAllLines(Path.Combine(task, "status")).Single(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal)).Split('\t')[1]);
            }
        }

        Assert.NotEmpty(lists);
        return [.. lists];
    }

    /// <summary>Per daemon: notifications it sent and packets it moved, summed over its queues.</summary>
    private static Dictionary<string, (long Sent, long Packets)> Notifications(LinkPair pair)
    {
        (int code, string json, string err) = Run.In(null, Run.Vop("status", "-j", "--interval", "0.1", "--run-dir", pair.RunDir));
        Assert.True(code == 0, json + err);
        var result = new Dictionary<string, (long, long)>();
        using var doc = JsonDocument.Parse(json);
        foreach (JsonElement daemon in doc.RootElement.GetProperty("daemons").EnumerateArray())
        {
            long sent = 0, packets = 0;
            foreach (JsonElement q in daemon.GetProperty("links").EnumerateArray()
                .SelectMany(l => l.GetProperty("devices").EnumerateArray())
                .SelectMany(d => d.GetProperty("queues").EnumerateArray()))
            {
                sent += q.GetProperty("notifications_sent").GetInt64();
                packets += q.GetProperty("packets").GetInt64();
            }

            result[daemon.GetProperty("daemon").GetString()!] = (sent, packets);
        }

        return result;
    }
}
