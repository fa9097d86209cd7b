using System.Diagnostics;
using System.Globalization;
using System.Text;
using Vop.Links;
using Vop.Links.Rings;
using Vop.Links.Stats;

namespace Vop.Metrics.Tests;

/// <summary>
/// The scrape text of <see cref="MetricsExporter.WriteAsync"/> over a fixed snapshot: metric names, HELP and
/// TYPE lines, label sets and values, per direction and link, the histograms kept in the queue cells, and
/// bounded-reason series present at 0 before anything happened.
/// </summary>
public sealed class MetricsExporterTests
{
    private static readonly string[] s_dropReasons = ["ring_full", "bad_hdr", "oversize", "no_buffer"];

    [Fact]
    public async Task ALinkRestartedOrRemovedByAReloadDropsItsOldSeries()
    {
        const string Series = "vop_receive_packets_total{link=\"b\",device=\"net0\",queue=\"rx0\"}";
        MetricsSnapshot Snapshot(long generation, long packets, bool withB) => new(
            [new LinkSeries("a", "device", true, 0) { Generation = 1 }, .. withB ? [new LinkSeries("b", "device", true, 0) { Generation = generation }] : Array.Empty<LinkSeries>()],
            [],
            [new QueueSeries("a", "net0", "rx0", "receive", new QueueStats("rx0", s_dropReasons) { Packets = 7 }),
             .. withB ? [new QueueSeries("b", "net0", "rx0", "receive", new QueueStats("rx0", s_dropReasons) { Packets = packets })] : Array.Empty<QueueSeries>()]);
        MetricsSnapshot current = Snapshot(1, 100, withB: true);
        var exporter = new MetricsExporter(() => current);
        Assert.Equal(100, Samples(await Scrape(exporter))[Series]);

        // Restarted: a new generation whose counters start again from 0 is exported as it is, not held at 100.
        current = Snapshot(2, 5, withB: true);
        Assert.Equal(5, Samples(await Scrape(exporter))[Series]);

        // Removed: none of its series remain; the other link's are untouched.
        current = Snapshot(2, 5, withB: false);
        string text = await Scrape(exporter);
        Assert.DoesNotContain("link=\"b\"", text);
        Assert.Equal(7, Samples(text)["vop_receive_packets_total{link=\"a\",device=\"net0\",queue=\"rx0\"}"]);
    }

    [Fact]
    public async Task TextOutputCarriesEveryQueueAndLinkWithItsLabels()
    {
        var rx = new QueueStats("rx0", s_dropReasons) { Packets = 5, Bytes = 7000, Batches = 3, NotificationsSent = 2, NotificationsSuppressed = 1, DoorbellsReceived = 4, Occupancy = 9 };
        rx.Drops[2] = 1; // oversize
        rx.RingErrors[(int)RingErrorKind.OutOfWindow] = 1;
        rx.RecordLatency(Stopwatch.Frequency * 3 / 1_000_000, 2);
        rx.RecordLatency(Stopwatch.Frequency * 10); // 10 s: past the last finite bucket
        rx.RecordBatch(1);
        rx.RecordBatch(3);
        var tx = new QueueStats("tx0", s_dropReasons) { Packets = 11, Bytes = 1100 };
        var cardRx = new QueueStats("rx0", s_dropReasons) { Packets = 42 };
        var hostCounters = new LinkCounters();
        for (int i = 0; i < 3; i++)
        {
            hostCounters.Refused(LinkCounters.Refusal.ExtraClient);
        }

        hostCounters.Repaired(LinkCounters.Part.State);
        var snapshot = new MetricsSnapshot(
            [
                new LinkSeries("host", "device", true, 2)
                {
                    PeerEpoch = 77,
                    ResetsByReason = new Dictionary<string, long> { ["driver_reset"] = 1, ["link_down"] = 1, ["broken"] = 0 },
                    Refusals = hostCounters.Refusals,
                    Repairs = hostCounters.Repairs,
                    InternalErrors = 1,
                },
                new LinkSeries("card", "driver", false, 0) { Refusals = new LinkCounters().Refusals }, // a link that never refused anything
            ],
            [new DeviceSeries("host", "net0", "net", 0xF, 0x1_0000_0030, true)],
            [
                new QueueSeries("host", "net0", "rx0", "receive", rx),
                new QueueSeries("host", "net0", "tx0", "transmit", tx),
                new QueueSeries("card", "net0", "rx0", "receive", cardRx),
            ]);
        var exporter = new MetricsExporter(() => snapshot);

        string text = await Scrape(exporter);
        Dictionary<string, double> samples = Samples(text);
        const string Host = "link=\"host\",device=\"net0\"";

        // Counters by direction: a receive queue never shows up as transmit, links never mix.
        Assert.Equal(5, samples[$"vop_receive_packets_total{{{Host},queue=\"rx0\"}}"]);
        Assert.Equal(7000, samples[$"vop_receive_bytes_total{{{Host},queue=\"rx0\"}}"]);
        Assert.Equal(11, samples[$"vop_transmit_packets_total{{{Host},queue=\"tx0\"}}"]);
        Assert.Equal(1100, samples[$"vop_transmit_bytes_total{{{Host},queue=\"tx0\"}}"]);
        Assert.Equal(42, samples["vop_receive_packets_total{link=\"card\",device=\"net0\",queue=\"rx0\"}"]);
        Assert.False(samples.ContainsKey($"vop_transmit_packets_total{{{Host},queue=\"rx0\"}}"));
        Assert.False(samples.ContainsKey($"vop_receive_packets_total{{{Host},queue=\"tx0\"}}"));
        Assert.Equal(3, samples[$"vop_queue_batches_total{{{Host},queue=\"rx0\"}}"]);
        Assert.Equal(2, samples[$"vop_queue_notifications_total{{{Host},queue=\"rx0\"}}"]);
        Assert.Equal(1, samples[$"vop_queue_notifications_suppressed_total{{{Host},queue=\"rx0\"}}"]);
        Assert.Equal(4, samples[$"vop_queue_doorbells_total{{{Host},queue=\"rx0\"}}"]);
        Assert.Equal(9, samples[$"vop_queue_occupancy{{{Host},queue=\"rx0\"}}"]);

        // Every drop reason and ring error kind exists per queue, at 0 until it happens; "none" is no kind.
        Assert.Equal(1, samples[$"vop_receive_drops_total{{{Host},queue=\"rx0\",reason=\"oversize\"}}"]);
        foreach (string reason in s_dropReasons.Where(r => r != "oversize"))
        {
            Assert.Equal(0, samples[$"vop_receive_drops_total{{{Host},queue=\"rx0\",reason=\"{reason}\"}}"]);
            Assert.Equal(0, samples[$"vop_transmit_drops_total{{{Host},queue=\"tx0\",reason=\"{reason}\"}}"]);
        }

        Assert.Equal(1, samples[$"vop_ring_errors_total{{{Host},queue=\"rx0\",kind=\"out_of_window\"}}"]);
        foreach (string kind in RingErrorKindNames.All.Skip(1))
        {
            Assert.True(samples.ContainsKey($"vop_ring_errors_total{{{Host},queue=\"tx0\",kind=\"{kind}\"}}"), $"no {kind} series");
        }

        Assert.Equal(0, samples[$"vop_ring_errors_total{{{Host},queue=\"tx0\",kind=\"bad_head\"}}"]);
        Assert.DoesNotContain(samples.Keys, k => k.Contains("kind=\"none\"", StringComparison.Ordinal));

        // Link series; the refusal reasons are there at 0 on a link that never refused anything.
        Assert.Equal(1, samples["vop_link_up{link=\"host\",role=\"device\"}"]);
        Assert.Equal(0, samples["vop_link_up{link=\"card\",role=\"driver\"}"]);
        Assert.Equal(2, samples["vop_link_resets_total{link=\"host\"}"]);
        Assert.Equal(77, samples["vop_peer_epoch{link=\"host\"}"]);
        Assert.Equal(1, samples["vop_peer_resets_total{link=\"host\",reason=\"link_down\"}"]);
        Assert.Equal(0, samples["vop_peer_resets_total{link=\"host\",reason=\"broken\"}"]);
        Assert.Equal(3, samples["vop_peer_refusals_total{link=\"host\",reason=\"extra_client\"}"]);
        Assert.Equal(6, LinkCounters.Refusal.All.Count);
        foreach (string reason in LinkCounters.Refusal.All)
        {
            Assert.Equal(0, samples[$"vop_peer_refusals_total{{link=\"card\",reason=\"{reason}\"}}"]);
        }

        Assert.Equal(1, samples["vop_window_repairs_total{link=\"host\",part=\"state\"}"]);
        Assert.Equal(1, samples["vop_internal_errors_total{link=\"host\"}"]);
        Assert.Equal(15, samples["vop_device_status{link=\"host\",device=\"net0\"}"]);
        Assert.Equal(1, samples["vop_device_live{link=\"host\",device=\"net0\"}"]);
        Assert.Equal(1, samples["vop_device_info{link=\"host\",device=\"net0\",type=\"net\",features=\"0x100000030\"}"]);

        // Latency histogram from the cell's buckets: cumulative, in seconds, +Inf = count.
        string lat = $"{Host},queue=\"rx0\"";
        Assert.Equal(0, samples[$"vop_queue_latency_seconds_bucket{{{lat},le=\"2E-06\"}}"]);
        Assert.Equal(2, samples[$"vop_queue_latency_seconds_bucket{{{lat},le=\"4E-06\"}}"]);
        Assert.Equal(2, samples[$"vop_queue_latency_seconds_bucket{{{lat},le=\"1.04858\"}}"]);
        Assert.Equal(3, samples[$"vop_queue_latency_seconds_bucket{{{lat},le=\"+Inf\"}}"]);
        Assert.Equal(3, samples[$"vop_queue_latency_seconds_count{{{lat}}}"]);
        Assert.Equal(10.000006, samples[$"vop_queue_latency_seconds_sum{{{lat}}}"], 4);
        Assert.Equal(0, samples[$"vop_queue_latency_seconds_count{{{Host},queue=\"tx0\"}}"]);

        // Batch-size histogram: batches of 1 and 3.
        Assert.Equal(1, samples[$"vop_queue_batch_size_bucket{{{lat},le=\"1\"}}"]);
        Assert.Equal(1, samples[$"vop_queue_batch_size_bucket{{{lat},le=\"2\"}}"]);
        Assert.Equal(2, samples[$"vop_queue_batch_size_bucket{{{lat},le=\"4\"}}"]);
        Assert.Equal(2, samples[$"vop_queue_batch_size_bucket{{{lat},le=\"+Inf\"}}"]);
        Assert.Equal(4, samples[$"vop_queue_batch_size_sum{{{lat}}}"]);

        // HELP and TYPE once per family, before its samples.
        foreach ((string name, string type) in new[]
        {
            ("vop_receive_packets_total", "counter"), ("vop_transmit_bytes_total", "counter"), ("vop_receive_drops_total", "counter"),
            ("vop_ring_errors_total", "counter"), ("vop_link_up", "gauge"), ("vop_queue_occupancy", "gauge"),
            ("vop_peer_refusals_total", "counter"), ("vop_queue_latency_seconds", "histogram"), ("vop_queue_batch_size", "histogram"),
        })
        {
            string[] lines = text.Split('\n');
            int help = Array.FindIndex(lines, l => l.StartsWith($"# HELP {name} ", StringComparison.Ordinal));
            int typeLine = Array.IndexOf(lines, $"# TYPE {name} {type}");
            int first = Array.FindIndex(lines, l => l.StartsWith(name + "{", StringComparison.Ordinal) || l.StartsWith(name + "_bucket{", StringComparison.Ordinal));
            Assert.True(help >= 0, $"no HELP for {name}");
            Assert.True(typeLine > help, $"no TYPE {type} after the HELP of {name}");
            Assert.True(first > typeLine, $"samples of {name} before its TYPE");
            Assert.Single(lines, l => l.StartsWith($"# TYPE {name} ", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task CountersFollowTheCellsBetweenScrapes()
    {
        var rx = new QueueStats("rx0", s_dropReasons) { Packets = 1 };
        var snapshot = new MetricsSnapshot([], [], [new QueueSeries("l", "d", "rx0", "receive", rx)]);
        var exporter = new MetricsExporter(() => snapshot);
        const string Key = "vop_receive_packets_total{link=\"l\",device=\"d\",queue=\"rx0\"}";
        Assert.Equal(1, Samples(await Scrape(exporter))[Key]);
        rx.Packets = 1000;
        rx.Drops[3] = 2;
        Assert.Equal(1000, Samples(await Scrape(exporter))[Key]);
        Assert.Equal(2, Samples(await Scrape(exporter))["vop_receive_drops_total{link=\"l\",device=\"d\",queue=\"rx0\",reason=\"no_buffer\"}"]);
    }

    private static async Task<string> Scrape(MetricsExporter exporter)
    {
        using var stream = new MemoryStream();
        await exporter.WriteAsync(stream, CancellationToken.None);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Every sample line as "name{labels}" → value (the exposition format: the value after the last space).</summary>
    private static Dictionary<string, double> Samples(string text)
    {
        var d = new Dictionary<string, double>();
        foreach (string line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            int space = line.LastIndexOf(' ');
            Assert.True(d.TryAdd(line[..space], double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture)), $"duplicate series {line}");
        }

        return d;
    }
}
