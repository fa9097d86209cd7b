using System.Diagnostics;
using System.Text.Json;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// Multiqueue virtio-net (queuePairs N) between two daemons on a loopback link: every pair carries
/// traffic, parallel hashed TCP transfers arrive intact, and no flow is reordered (each flow stays on one
/// pair: one TAP queue, one pump, one ring each way).
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class MultiqueueEndToEndTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void EveryPairCarriesParallelFlowsIntactAndInOrder(int pairs)
    {
        using var pair = new LinkPair(queuePairs: pairs);
        pair.Up();

        // Both TAPs have one kernel queue per pair (multiqueue TAP, one fd each, all attached).
        foreach ((string ns, string tap) in new[] { (pair.HostNs, pair.HostTap), (pair.CardNs, pair.CardTap) })
        {
            (_, string queues, _) = Run.In(ns, "ls", $"/sys/class/net/{tap}/queues");
            Assert.Equal(pairs, queues.Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(q => q.StartsWith("tx-", StringComparison.Ordinal)));
        }

        // Four parallel hashed transfers host → card.
        foreach ((string src, string dst, long got) in pair.ParallelTransfers(pair.HostNs, pair.CardNs, pair.CardIp, 32L << 20, 4, seed: 40))
        {
            Assert.Equal(src, dst);
            Assert.Equal(32L << 20, got);
        }

        // The kernel hashes each flow to a TAP queue: more flows (both ways) until every pair has had one.
        for (int round = 0; round < 8 && !EveryPairMoved(pair, pairs); round++)
        {
            Process server = Run.Background(pair.CardNs, Path.Combine(pair.Dir, "iperf3.log"), "iperf3", "-s", "-1", "-B", pair.CardIp);
            try
            {
                Thread.Sleep(500);
                string[] reverse = round % 2 == 1 ? ["-R"] : [];
                (int code, string output, string err) = Run.In(pair.HostNs, TimeSpan.FromSeconds(60), ["iperf3", "-c", pair.CardIp, "-P", "8", "-t", "2", .. reverse]);
                Assert.True(code == 0, $"iperf3 -P 8: {output}{err}\n{pair.Logs()}");
            }
            finally
            {
                server.WaitForExit(10_000);
                LinkPair.Kill(server, 9);
            }
        }

        Assert.True(EveryPairMoved(pair, pairs), "some pair carried nothing: " + Status(pair));

        // No reordering. The senders' reorder detectors (SACK, timestamps, Reno) must never have fired in
        // either namespace; and when no TAP dropped a frame (no loss to fill in), no receiver may have
        // queued a segment out of order either.
        foreach (string ns in new[] { pair.HostNs, pair.CardNs })
        {
            Dictionary<string, long> tcp = Nstat(ns);
            long reorder = tcp["TcpExtTCPSACKReorder"] + tcp["TcpExtTCPTSReorder"] + tcp["TcpExtTCPRenoReorder"];
            Assert.True(reorder == 0, $"{ns}: TCP saw reordering: {string.Join(", ", tcp.Select(kv => $"{kv.Key}={kv.Value}"))}");
        }

        long tapDrops = TapDrops(pair.HostNs, pair.HostTap) + TapDrops(pair.CardNs, pair.CardTap);
        if (tapDrops == 0)
        {
            foreach (string ns in new[] { pair.HostNs, pair.CardNs })
            {
                Assert.Equal(0, Nstat(ns)["TcpExtTCPOFOQueue"]);
            }
        }

        // The control queue is listed once per daemon, after the pairs.
        using JsonDocument doc = JsonDocument.Parse(Status(pair));
        foreach (JsonElement daemon in doc.RootElement.GetProperty("daemons").EnumerateArray())
        {
            string[] names = [.. NetQueues(daemon).Select(q => q.GetProperty("name").GetString()!)];
            Assert.Equal([.. Enumerable.Range(0, pairs).SelectMany(p => new[] { $"rx{p}", $"tx{p}" }), "ctrl"], names);
        }
    }

    private static string Status(LinkPair pair)
    {
        (int code, string json, string err) = Run.In(null, Run.Vop("status", "-j", "--interval", "0.2", "--run-dir", pair.RunDir));
        Assert.True(code == 0, err);
        return json;
    }

    private static JsonElement.ArrayEnumerator NetQueues(JsonElement daemon) =>
        daemon.GetProperty("links")[0].GetProperty("devices").EnumerateArray()
            .First(d => d.GetProperty("type").GetString() == "net").GetProperty("queues").EnumerateArray();

    /// <summary>Every rx/tx queue of every pair has moved packets, on both daemons.</summary>
    private static bool EveryPairMoved(LinkPair pair, int pairs)
    {
        using JsonDocument doc = JsonDocument.Parse(Status(pair));
        foreach (JsonElement daemon in doc.RootElement.GetProperty("daemons").EnumerateArray())
        {
            Dictionary<string, long> packets = NetQueues(daemon).ToDictionary(q => q.GetProperty("name").GetString()!, q => q.GetProperty("packets").GetInt64());
            for (int p = 0; p < pairs; p++)
            {
                if (packets[$"rx{p}"] == 0 || packets[$"tx{p}"] == 0)
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>TCP counters of a namespace since it was made (nstat -a: absolute, -s: history untouched).</summary>
    private static Dictionary<string, long> Nstat(string ns)
    {
        (int code, string output, string err) = Run.In(ns, "nstat", "-asz", "TcpExtTCPSACKReorder", "TcpExtTCPTSReorder", "TcpExtTCPRenoReorder", "TcpExtTCPOFOQueue");
        Assert.True(code == 0, err);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 2 && f[0].StartsWith("TcpExt", StringComparison.Ordinal))
            .ToDictionary(f => f[0], f => long.Parse(f[1]));
    }

    private static long TapDrops(string ns, string tap)
    {
        (_, string output, _) = Run.In(ns, "ip", "-s", "-j", "link", "show", tap);
        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement s = doc.RootElement[0].GetProperty("stats64");
        return s.GetProperty("rx").GetProperty("dropped").GetInt64() + s.GetProperty("tx").GetProperty("dropped").GetInt64();
    }
}
