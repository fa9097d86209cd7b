using System.Diagnostics;
using System.Globalization;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// Attacks outside the rings against running daemons, each by a hostile peer process (tests/tools/
/// Vop.HostilePeer) that knows only the published wire format: a shrunk or shrinkable window, a device
/// table with shared or control vectors, queues over the header, state blocks or table, a second client
/// on the ivshmem socket, a scribbled header. Each asserts the attacked daemon is alive, named the reason
/// in one log line and a counter, and then carries ping and a hashed transfer for a genuine peer without
/// being restarted.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class HostilePeerTests
{
    private static string[] Hostile(params string[] args) =>
        [Run.Dotnet, Path.Combine(AppContext.BaseDirectory, "Vop.HostilePeer.dll"), .. args];

    /// <summary>The driver side meets a series of hostile device sides on its socket, refuses each, then works with a genuine one.</summary>
    [Fact]
    public void DriverSideRefusesHostileDeviceSidesAndThenWorks()
    {
        using var pair = new LinkPair();
        pair.StartDriver();

        // A memfd that accepts seals but has none: the driver side seals it itself, so the later shrink fails.
        string sealLog = Path.Combine(pair.Dir, "hostile-seal.log");
        using (Process shrinker = Run.Background(null, sealLog, Hostile("serve", "--socket", pair.Socket, "--unsealed", "--truncate-after-ms", "3000", "--duration-ms", "5000")))
        {
            Assert.True(shrinker.WaitForExit(60_000), "hostile serve did not finish");
            string said = File.ReadAllText(sealLog);
            Assert.True(said.Contains("truncated=refused", StringComparison.Ordinal), $"the driver side left the memfd shrinkable:\n{said}\n{pair.Logs()}");
            Assert.False(pair.Driver!.HasExited, "the driver side died\n" + pair.Logs());
        }

        (string Args, string Expect, string Reason)[] attacks =
        [
            ("--unsealable", "carries no F_SEAL_SHRINK", "unsealed_memory"),
            ("--layout dup-vector", "is also queue", "bad_table"),
            ("--layout zero-vector", "vector 0 is the control vector", "bad_table"),
            ("--layout queue-over-header", "over the window header", "bad_table"),
            ("--layout queue-over-state", "over the side state blocks", "bad_table"),
            ("--layout queue-over-table", "over the device table", "bad_table"),
        ];
        foreach ((string args, string expect, string reason) in attacks)
        {
            string log = Path.Combine(pair.Dir, "hostile.log");
            using Process hostile = Run.Background(null, log, Hostile(["serve", "--socket", pair.Socket, .. args.Split(' ')]));
            try
            {
                bool seen = Run.WaitUntil(() => CardLog(pair).Contains(expect, StringComparison.Ordinal), TimeSpan.FromSeconds(30));
                Assert.True(seen, $"{args}: the driver side never refused with \"{expect}\"\n{pair.Logs()}\n--- hostile\n{File.ReadAllText(log)}");
                Assert.False(pair.Driver!.HasExited, $"{args}: the driver side died\n{pair.Logs()}");
                Assert.True(Metric(pair.CardNs, "vop_peer_refusals_total", $"reason=\"{reason}\"") >= 1, $"{args}: refusal not counted as {reason}");
                Assert.False(pair.HasCarrier(pair.CardNs, pair.CardTap), $"{args}: the driver side brought its TAP up on a hostile window");
            }
            finally
            {
                LinkPair.Kill(hostile, 15);
            }
        }

        // Refused means logged once, not on every retry.
        Assert.Equal(1, CountOccurrences(CardLog(pair), "is also queue"));
        Assert.DoesNotContain("Unhandled exception", CardLog(pair), StringComparison.Ordinal);

        // A genuine device side now: the same driver process attaches and carries traffic.
        int driverPid = pair.Driver!.Id;
        pair.StartDevice();
        pair.WaitCarrier(true);
        Assert.Equal(driverPid, pair.Driver.Id);
        Assert.False(pair.Driver.HasExited);
        AssignAndCheckTraffic(pair, seed: 10);
    }

    /// <summary>Extra clients on the ivshmem socket are refused without touching the running session.</summary>
    [Fact]
    public void SecondClientIsRefusedAndTheSessionIsUntouched()
    {
        using var pair = new LinkPair();
        pair.Up();
        Assert.Equal(0, pair.Ping(pair.HostNs, pair.CardIp, count: 2).Code);

        (int code, string output, string err) = Run.In(null, TimeSpan.FromSeconds(120), Hostile("second-client", "--socket", pair.Socket, "--repeat", "20", "--hold-ms", "100"));
        Assert.True(code == 0, $"hostile second-client failed: {output}{err}");
        Assert.DoesNotContain("admitted=1", output, StringComparison.Ordinal);
        Assert.Contains("admitted=0", output, StringComparison.Ordinal);
        Assert.DoesNotContain("doorbells_seen=1", output, StringComparison.Ordinal);

        string host = HostLog(pair);
        Assert.Contains("refused a client", host, StringComparison.Ordinal);
        Assert.DoesNotContain("driver side left", host, StringComparison.Ordinal);
        Assert.True(Metric(pair.HostNs, "vop_peer_refusals_total", "reason=\"extra_client\"") >= 20, "extra clients not counted");
        Assert.True(pair.HasCarrier(pair.HostNs, pair.HostTap) && pair.HasCarrier(pair.CardNs, pair.CardTap), "carrier lost\n" + pair.Logs());

        // Doorbells still reach the genuine driver: ping is fast, not the hundreds of ms a lost wake-up costs.
        (int pc, string po, _) = pair.Ping(pair.HostNs, pair.CardIp, count: 20);
        Assert.True(pc == 0, po);
        double avgMs = double.Parse(po.Split("min/avg/max/mdev = ")[1].Split('/')[1], CultureInfo.InvariantCulture);
        Assert.True(avgMs < 100, $"ping average {avgMs} ms after the extra clients: doorbells lost?\n{po}");
        AssignAndCheckTraffic(pair, seed: 11, assign: false);
    }

    /// <summary>
    /// The loopback window cannot be shrunk by the client it is handed to; a pci window file with loose
    /// permissions is refused; an unprivileged local user cannot truncate a window vop accepted.
    /// </summary>
    [Fact]
    public void SharedMemoryCannotShrinkUnderVop()
    {
        using (var pair = new LinkPair())
        {
            pair.StartDevice();
            Assert.True(Run.WaitUntil(() => File.Exists(pair.Socket), TimeSpan.FromSeconds(30)), "device side never listened\n" + pair.Logs());
            (int code, string output, string err) = Run.In(null, Hostile("truncate-shm", "--socket", pair.Socket, "--size", "4096"));
            Assert.True(code == 0, $"truncate-shm failed: {output}{err}");
            Assert.Contains("truncate=refused", output, StringComparison.Ordinal);
            Assert.False(pair.Device!.HasExited, "device side died\n" + pair.Logs());

            // The attacker was the admitted client and left: a genuine driver side then works.
            pair.StartDriver();
            pair.WaitCarrier(true);
            AssignAndCheckTraffic(pair, seed: 12);
        }

        using (var pair = new LinkPair(kind: "pci"))
        {
            File.WriteAllBytes(pair.WindowFile, []);
            File.SetUnixFileMode(pair.WindowFile, (UnixFileMode)0x1B6); // 0666
            pair.StartDevice();
            Assert.True(pair.Device!.WaitForExit(30_000), "device side ran on a world-writable window file");
            Assert.NotEqual(0, pair.Device.ExitCode);
            Assert.Contains("others can write it", HostLog(pair), StringComparison.Ordinal);

            File.Delete(pair.WindowFile);
            pair.Up();
            (int code, string output, string err) = Run.In(null, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "truncate", "-s", "4096", pair.WindowFile);
            Assert.NotEqual(0, code);
            Assert.Contains("Permission denied", output + err, StringComparison.Ordinal);
            Assert.False(pair.Device!.HasExited || pair.Driver!.HasExited, "a daemon died\n" + pair.Logs());
            AssignAndCheckTraffic(pair, seed: 13, assign: false);
        }
    }

    /// <summary>A scribbled header, state block and table slot heal without restarting the device side.</summary>
    [Fact]
    public void DeviceSideRepairsWhatItOwnsInThePciWindow()
    {
        using var pair = new LinkPair(kind: "pci");
        pair.Up();
        int devicePid = pair.Device!.Id;
        LinkPair.Kill(pair.Driver, 9);
        Assert.True(Run.WaitUntil(() => !pair.HasCarrier(pair.HostNs, pair.HostTap), TimeSpan.FromSeconds(15)), "host kept carrier\n" + pair.Logs());

        (string Offset, string Value, string Expect, string Part)[] scribbles =
        [
            ("0", "0xdeadbeef", "window header (magic read 0xdeadbeef)", "header"),
            ("0x44", "0x12345678", "device side state block", "state"),
            ("0x1000", "0", "device table slot 0", "slot"),
        ];
        foreach ((string offset, string value, string expect, string part) in scribbles)
        {
            (int code, string output, string err) = Run.In(null, Hostile("scribble", "--file", pair.WindowFile, "--offset", offset, "--u32", value));
            Assert.True(code == 0, $"scribble failed: {output}{err}");
            Assert.True(Run.WaitUntil(() => HostLog(pair).Contains(expect, StringComparison.Ordinal), TimeSpan.FromSeconds(10)), $"no repair of the {part}\n{pair.Logs()}");
            Assert.True(Metric(pair.HostNs, "vop_window_repairs_total", $"part=\"{part}\"") >= 1, $"repair of the {part} not counted");
        }

        // The driver side restarts into a healed window; the device side was never restarted.
        pair.StartDriver();
        pair.WaitCarrier(true);
        Assert.Equal(devicePid, pair.Device.Id);
        Assert.False(pair.Device.HasExited);
        Assert.DoesNotContain("bad window magic", CardLog(pair), StringComparison.Ordinal);
        AssignAndCheckTraffic(pair, seed: 14, cardOnly: true);
    }

    private static string HostLog(LinkPair pair) => ReadShared(Path.Combine(pair.Dir, "host.log"));

    private static string CardLog(LinkPair pair) => ReadShared(Path.Combine(pair.Dir, "card.log"));

    private static string ReadShared(string path)
    {
        if (!File.Exists(path))
        {
            return string.Empty;
        }

        using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    private static int CountOccurrences(string text, string what)
    {
        int n = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal))
        {
            n++;
        }

        return n;
    }

    /// <summary>Sum of a metric's samples whose label set contains <paramref name="labelPart"/>, scraped inside <paramref name="ns"/>.</summary>
    private static double Metric(string ns, string name, string labelPart)
    {
        (int code, string scrape, string err) = Run.In(ns, Run.NetProbe("http-get", "http://127.0.0.1:9465/metrics"));
        Assert.True(code == 0, $"scrape failed: {err}");
        return scrape.Split('\n')
            .Where(l => l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains(labelPart, StringComparison.Ordinal))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
    }

    private static void AssignAndCheckTraffic(LinkPair pair, int seed, bool assign = true, bool cardOnly = false)
    {
        if (assign || cardOnly)
        {
            Run.In(pair.CardNs, "ip", "addr", "replace", pair.CardIp + "/24", "dev", pair.CardTap);
        }

        if (assign && !cardOnly)
        {
            Run.In(pair.HostNs, "ip", "addr", "replace", pair.HostIp + "/24", "dev", pair.HostTap);
        }

        (int code, string output, _) = pair.Ping(pair.HostNs, pair.CardIp, count: 3);
        Assert.True(code == 0, $"ping host → card: {output}\n{pair.Logs()}");
        (code, output, _) = pair.Ping(pair.CardNs, pair.HostIp, count: 3);
        Assert.True(code == 0, $"ping card → host: {output}\n{pair.Logs()}");
        (string src, string dst, long got) = pair.Transfer(pair.HostNs, pair.CardNs, pair.CardIp, 16L << 20, seed);
        Assert.Equal(src, dst);
        Assert.Equal(16L << 20, got);
        (src, dst, got) = pair.Transfer(pair.CardNs, pair.HostNs, pair.HostIp, 16L << 20, seed + 100);
        Assert.Equal(src, dst);
        Assert.Equal(16L << 20, got);
    }
}
