using System.Diagnostics;
using System.Text.Json;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>Per-queue metrics of a running pair: `vop status -j`, a clean promtool check, a real Prometheus scraping them.</summary>
[Collection(EndToEnd.Name)]
public sealed class MetricsEndToEndTests
{
    private static IEnumerable<string> RuleExpressions()
    {
        string[] lines = File.ReadAllLines(Path.Combine(DeployTests.Deploy, "prometheus", "vop.rules.yml"));
        foreach (string line in lines.Where(l => l.TrimStart().StartsWith("expr:", StringComparison.Ordinal)))
        {
            string expr = line.Trim()["expr:".Length..].Trim();
            // The threshold decides whether to alert; without it the expression must still see the series.
            yield return System.Text.RegularExpressions.Regex.Replace(expr, @"\s*(>|==|<)\s*[\d.]+\s*$", string.Empty);
        }
    }

    [Fact]
    public void StatusAndPrometheusSeeEveryQueueOfARunningPair()
    {
        using var pair = new LinkPair(consoleCommand: ["/bin/sh", "-i"]);
        pair.Up();
        (string src, string dst, long got) = pair.Transfer(pair.HostNs, pair.CardNs, pair.CardIp, 64L << 20, seed: 11);
        Assert.Equal(src, dst);

        // vop status -j, from the root namespace through the control sockets, names both daemons; host → card
        // frames are "transmit" on both ends, counted once per end.
        (int code, string json, string err) = Run.In(null, Run.Vop("status", "-j", "--interval", "0.2", "--run-dir", pair.RunDir));
        Assert.True(code == 0, err);
        using JsonDocument doc = JsonDocument.Parse(json);
        JsonElement[] daemons = [.. doc.RootElement.GetProperty("daemons").EnumerateArray()];
        Assert.Equal(["card", "host"], daemons.Select(d => d.GetProperty("daemon").GetString()));
        foreach (JsonElement daemon in daemons)
        {
            JsonElement link = daemon.GetProperty("links")[0];
            Assert.Equal(daemon.GetProperty("daemon").GetString() == "host" ? "card0" : "host", link.GetProperty("name").GetString());
            Assert.Equal("loopback", link.GetProperty("kind").GetString());
            Assert.True(link.GetProperty("up").GetBoolean());
            JsonElement net = link.GetProperty("devices").EnumerateArray().First(d => d.GetProperty("type").GetString() == "net");
            JsonElement rx0 = net.GetProperty("queues").EnumerateArray().First(q => q.GetProperty("name").GetString() == "rx0");
            Assert.Equal("transmit", rx0.GetProperty("direction").GetString());
            Assert.True(rx0.GetProperty("bytes").GetInt64() >= 64L << 20, json);
            Assert.True(link.GetProperty("devices").GetArrayLength() == 2, json);
        }

        (int c, string scrape, string e) = Run.In(pair.HostNs, Run.NetProbe("http-get", "http://127.0.0.1:9465/metrics"));
        Assert.True(c == 0, e);
        string scrapeFile = Path.Combine(pair.Dir, "scrape.txt");
        File.WriteAllText(scrapeFile, scrape);
        (int pc, string po, string pe) = Run.In(null, "sh", "-c", $"promtool check metrics < '{scrapeFile}'");
        Assert.True(pc == 0, po + pe);
        Assert.Contains("vop_transmit_bytes_total{link=\"card0\",device=\"net0\",queue=\"rx0\"}", scrape);
        Assert.Contains("vop_link_up{link=\"card0\",role=\"device\"} 1", scrape);
        Assert.Contains("vop_queue_batch_size_bucket{link=\"card0\",device=\"net0\",queue=\"rx0\",le=\"+Inf\"}", scrape);
        Assert.Contains("vop_queue_occupancy{link=\"card0\",device=\"net0\",queue=\"tx0\"}", scrape);
        Assert.Contains("vop_peer_resets_total{link=\"card0\",reason=\"link_down\"} 0", scrape);
        string epoch = scrape.Split('\n').First(l => l.StartsWith("vop_peer_epoch{link=\"card0\"}", StringComparison.Ordinal));
        Assert.NotEqual("0", epoch.Split(' ')[1]);

        // Host to card frames waited between the host TAP and the published index: the histogram has them.
        string count = scrape.Split('\n').First(l => l.StartsWith("vop_queue_latency_seconds_count{link=\"card0\",device=\"net0\",queue=\"rx0\"}", StringComparison.Ordinal));
        Assert.True(long.Parse(count.Split(' ')[1]) > 0, count);

        // A real Prometheus in the host namespace scrapes the daemon every second.
        string promDir = Path.Combine(pair.Dir, "prometheus");
        Directory.CreateDirectory(promDir);
        File.WriteAllText(Path.Combine(promDir, "prometheus.yml"), """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: vop
                static_configs:
                  - targets: ['127.0.0.1:9465']
            """);
        Process prometheus = Run.Background(pair.HostNs, Path.Combine(promDir, "prometheus.log"), "prometheus",
            "--config.file=" + Path.Combine(promDir, "prometheus.yml"), "--storage.tsdb.path=" + Path.Combine(promDir, "data"),
            "--web.listen-address=127.0.0.1:9090");
        try
        {
            string Query(string q) => Run.In(pair.HostNs, Run.NetProbe("http-get", "http://127.0.0.1:9090/api/v1/query?query=" + Uri.EscapeDataString(q))).Out;
            int Series(string q)
            {
                try
                {
                    using JsonDocument d = JsonDocument.Parse(Query(q));
                    return d.RootElement.GetProperty("data").GetProperty("result").GetArrayLength();
                }
                catch (JsonException)
                {
                    return 0;
                }
            }

            // 2 net queues + 6 console queues, each with packets and bytes in exactly one direction.
            Assert.True(Run.WaitUntil(() => Series("vop_transmit_bytes_total") + Series("vop_receive_bytes_total") == 8, TimeSpan.FromSeconds(60)),
                "Prometheus did not get every queue: " + Query("vop_transmit_bytes_total") + File.ReadAllText(Path.Combine(promDir, "prometheus.log")));
            Assert.Equal(1, Series("vop_link_up == 1"));
            Assert.Equal(2, Series("vop_device_info"));

            // Every dashboard expression and every alert rule's expression (without its threshold) returns data.
            Thread.Sleep(6000); // a few scrapes, so rates over the window exist
            var expressions = DeployTests.DashboardExpressions()
                .Select(e => e.Replace("=~\"$instance\"", "=~\".*\"", StringComparison.Ordinal)
                    .Replace("=~\"$link\"", "=~\".*\"", StringComparison.Ordinal)
                    .Replace("=~\"$queue\"", "=~\".*\"", StringComparison.Ordinal)
                    .Replace("$__rate_interval", "10s", StringComparison.Ordinal))
                .Concat(RuleExpressions())
                .ToList();
            foreach (string expr in expressions)
            {
                Assert.True(Series(expr) > 0, $"no data for: {expr}");
            }

            // The data queue's bit rate in Prometheus agrees with what iperf3 measured, within 10%.
            Process server = Run.Background(pair.CardNs, Path.Combine(pair.Dir, "iperf3.log"), "iperf3", "-s", "-1", "-B", pair.CardIp);
            Thread.Sleep(500);
            (int ic, string iperf, string ie) = Run.In(pair.HostNs, TimeSpan.FromSeconds(60), "iperf3", "-c", pair.CardIp, "-t", "8", "-J");
            server.WaitForExit(5000);
            server.Dispose();
            Assert.True(ic == 0, iperf + ie);
            using JsonDocument run = JsonDocument.Parse(iperf);
            double start = run.RootElement.GetProperty("start").GetProperty("timestamp").GetProperty("timesecs").GetDouble();
            double iperfBps = run.RootElement.GetProperty("end").GetProperty("sum_received").GetProperty("bits_per_second").GetDouble();
            Thread.Sleep(2000);
            string q = "rate(vop_transmit_bytes_total{link=\"card0\",device=\"net0\",queue=\"rx0\"}[5s]) * 8";
            string answer = Run.In(pair.HostNs, Run.NetProbe("http-get", $"http://127.0.0.1:9090/api/v1/query?time={start + 6:F0}&query=" + Uri.EscapeDataString(q))).Out;
            using JsonDocument r = JsonDocument.Parse(answer);
            double promBps = double.Parse(r.RootElement.GetProperty("data").GetProperty("result")[0].GetProperty("value")[1].GetString()!, System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(Math.Abs(promBps - iperfBps) / iperfBps < 0.10, $"Prometheus {promBps / 1e9:F2} Gbit/s vs iperf3 {iperfBps / 1e9:F2} Gbit/s");
        }
        finally
        {
            LinkPair.Kill(prometheus, 15);
            prometheus.Dispose();
        }
    }
}
