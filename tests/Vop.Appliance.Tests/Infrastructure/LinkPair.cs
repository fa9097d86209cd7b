using System.Diagnostics;
using System.Text.Json;

namespace Vop.Appliance.Tests.Infrastructure;

/// <summary>
/// Two network namespaces (host, card) with a vop daemon in each joined by a loopback link: the device
/// side in host with TAP vh0 (10.199.N.1), the driver side in card with TAP vc0 (10.199.N.2). Names carry
/// a per-process, per-instance prefix; everything made here is removed on dispose, daemons by their PID.
/// </summary>
public sealed class LinkPair : IDisposable
{
    private static int s_counter;
    private readonly int _mtu;

    /// <param name="mtu">MTU the device side puts in config space.</param>
    /// <param name="consoleCommand">When set, a console device too, whose card end runs this command.</param>
    /// <param name="kind">loopback (ivshmem socket) or pci (a window file mapped by both, polled doorbells).</param>
    /// <param name="cardIsDevice">false: the host is the device side (MIC default); true: the card is.</param>
    /// <param name="doorbellBits">ntb only: emulated NTB registers in a second file (<see cref="RegisterFile"/>) with this many doorbell bits.</param>
    /// <param name="queuePairs">queuePairs of the net device on both ends (1: the key is left out); the window grows with it.</param>
    /// <param name="hostLink">Extra keys of the host's link entry (poll, cpus).</param>
    /// <param name="cardLink">Extra keys of the card's link entry.</param>
    /// <param name="hostMode">The host end's net device mode, "tap" or "tun" (null: the key is left out, a TAP).</param>
    /// <param name="cardMode">The card end's net device mode, likewise.</param>
    public LinkPair(int mtu = 1500, string[]? consoleCommand = null, string kind = "loopback", bool cardIsDevice = false, int? doorbellBits = null, int queuePairs = 1,
        IReadOnlyDictionary<string, object>? hostLink = null, IReadOnlyDictionary<string, object>? cardLink = null, string? hostMode = null, string? cardMode = null)
    {
        Run.RequireRoot();
        _mtu = mtu;
        int n = Interlocked.Increment(ref s_counter);
        Id = $"vt{Environment.ProcessId % 100000}x{n}";
        Subnet = $"10.199.{(Environment.ProcessId + n) % 250}";
        HostNs = $"{Id}-h";
        CardNs = $"{Id}-c";
        Dir = Path.Combine("/tmp", $"vop-e2e-{Id}");
        Directory.CreateDirectory(Dir);
        Socket = Path.Combine(Dir, "link.sock");
        object Net(string tap, bool device, string? mode)
        {
            var d = new Dictionary<string, object> { ["type"] = "net", ["name"] = "net0", ["tap"] = tap };
            if (device)
            {
                d["mac"] = "52:54:00:0e:2e:01";
                d["mtu"] = mtu;
            }

            if (queuePairs != 1)
            {
                d["queuePairs"] = queuePairs;
            }

            if (mode is not null)
            {
                d["mode"] = mode;
            }

            return d;
        }

        object DeviceNet(string tap) => Net(tap, true, tap == HostTap ? hostMode : cardMode);
        object DriverNet(string tap) => Net(tap, false, tap == HostTap ? hostMode : cardMode);
        // 1 pair fits 64M; each doubling of the pairs doubles the driver's buffers (WindowSizing).
        string windowSize = $"{64 << (int)Math.Ceiling(Math.Log2(queuePairs))}M";
        var hostDevices = new List<object> { cardIsDevice ? DriverNet(HostTap) : DeviceNet(HostTap) };
        var cardDevices = new List<object> { cardIsDevice ? DeviceNet(CardTap) : DriverNet(CardTap) };
        if (consoleCommand is not null)
        {
            hostDevices.Add(new { type = "console", name = "console0", end = "host", ports = new[] { new { name = "console" }, new { name = "ssh" } } });
            cardDevices.Add(new
            {
                type = "console", name = "console0", end = "card",
                ports = new object[] { new { name = "console", command = consoleCommand }, new { name = "ssh", connect = "127.0.0.1:22" } },
            });
        }

        WindowFile = $"/dev/shm/vop-e2e-{Id}";
        RegisterFile = $"/dev/shm/vop-e2e-{Id}-regs";
        if (doorbellBits is not null)
        {
            // The NTB's register BAR, emulated: one zeroed page both ends map, mode 0600 (a register BAR exists
            // before vop starts; vop never creates one).
            File.WriteAllBytes(RegisterFile, new byte[4096]);
            File.SetUnixFileMode(RegisterFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        // The host end's registers; the card's are the same page seen from the other side: its peer set
        // register is the host's status register, its peer scratchpads the host's local ones.
        object Registers(bool host) => new
        {
            path = RegisterFile,
            emulated = true,
            doorbell = new { peerSet = host ? RegPeerSetHost : RegStatusHost, status = host ? RegStatusHost : RegPeerSetHost, mask = host ? RegMaskHost : RegMaskCard, bits = doorbellBits },
            scratchpads = new { local = host ? SpadHost : SpadCard, peer = host ? SpadCard : SpadHost, count = 16 },
        };
        Dictionary<string, object> Link(string name, bool device, string end, List<object> devices)
        {
            var l = new Dictionary<string, object> { ["name"] = name, ["kind"] = kind, ["role"] = device ? "device" : "driver", ["end"] = end, ["devices"] = devices };
            if (kind == "loopback")
            {
                l["socket"] = Socket;
                if (device)
                {
                    l["windowSize"] = windowSize;
                }
            }
            else
            {
                l["path"] = WindowFile;
                l["windowSize"] = windowSize;
                if (doorbellBits is not null)
                {
                    l["registers"] = Registers(end == "host");
                }
            }

            foreach ((string key, object value) in (end == "host" ? hostLink : cardLink) ?? new Dictionary<string, object>())
            {
                l[key] = value;
            }

            return l;
        }

        File.WriteAllText(HostConfig, JsonSerializer.Serialize(new { runDir = RunDir, links = new[] { Link("card0", !cardIsDevice, "host", hostDevices) } }));
        File.WriteAllText(CardConfig, JsonSerializer.Serialize(new { runDir = RunDir, links = new[] { Link("host", cardIsDevice, "card", cardDevices) } }));
        foreach (string ns in new[] { HostNs, CardNs })
        {
            Run.Must(Run.In(null, "ip", "netns", "add", ns), "ip netns add");
            Run.Must(Run.In(null, "ip", "-n", ns, "link", "set", "lo", "up"), "lo up");
        }
    }

    public string Id { get; }

    public string Subnet { get; }

    public string HostNs { get; }

    public string CardNs { get; }

    public string Dir { get; }

    public string Socket { get; }

    /// <summary>The window file of a pci pair (removed on dispose).</summary>
    public string WindowFile { get; }

    /// <summary>An ntb pair's emulated register BAR (removed on dispose): offsets below as the host end sees them.</summary>
    public string RegisterFile { get; }

    public const int RegPeerSetHost = 0x00;
    public const int RegStatusHost = 0x08;
    public const int RegMaskHost = 0x10;
    public const int RegMaskCard = 0x18;
    public const int SpadHost = 0x40;
    public const int SpadCard = 0x80;

    /// <summary>Both daemons' run directory: control/(host|card).sock, card0/PORT.sock (the host's ports), host/ (the card's).</summary>
    public string RunDir => Path.Combine(Dir, "run");

    public string HostTap => "vh0";

    public string CardTap => "vc0";

    public string HostIp => Subnet + ".1";

    public string CardIp => Subnet + ".2";

    public string HostConfig => Path.Combine(Dir, "host.json");

    public string CardConfig => Path.Combine(Dir, "card.json");

    public Process? Device { get; private set; }

    public Process? Driver { get; private set; }

    public void StartDevice() => Device = Run.Background(HostNs, Path.Combine(Dir, "host.log"), Run.Vop("run", "--config", HostConfig));

    public void StartDriver() => Driver = Run.Background(CardNs, Path.Combine(Dir, "card.log"), Run.Vop("run", "--config", CardConfig));

    /// <summary>Starts both daemons, waits for carrier on both TAPs and assigns addresses.</summary>
    public void Up()
    {
        StartDevice();
        StartDriver();
        WaitCarrier(true);
        Run.Must(Run.In(HostNs, "ip", "addr", "add", HostIp + "/24", "dev", HostTap), "host addr");
        Run.Must(Run.In(CardNs, "ip", "addr", "add", CardIp + "/24", "dev", CardTap), "card addr");
    }

    public bool HasCarrier(string ns, string tap) => Run.HasCarrier(ns, tap);

    public bool TapExists(string ns, string tap) => Run.In(ns, "ip", "link", "show", tap).Code == 0;

    public void WaitCarrier(bool on, TimeSpan? timeout = null)
    {
        TimeSpan t = timeout ?? TimeSpan.FromSeconds(30);
        bool ok = Run.WaitUntil(() => HasCarrier(HostNs, HostTap) == on && HasCarrier(CardNs, CardTap) == on, t);
        Assert.True(ok, $"carrier did not become {(on ? "up" : "down")} on both TAPs within {t.TotalSeconds}s\n{Logs()}");
    }

    public string Logs()
    {
        string Read(string f) => File.Exists(f) ? File.ReadAllText(f) : "(no log)";
        return $"--- host.log\n{Read(Path.Combine(Dir, "host.log"))}\n--- card.log\n{Read(Path.Combine(Dir, "card.log"))}";
    }

    public (int Code, string Out, string Err) Ping(string fromNs, string to, int count = 3, int size = 56, bool dontFragment = false)
    {
        List<string> cmd = ["ping", "-c", count.ToString(), "-i", "0.2", "-W", "2", "-s", size.ToString()];
        if (dontFragment)
        {
            cmd.AddRange(["-M", "do"]);
        }

        cmd.Add(to);
        return Run.In(fromNs, [.. cmd]);
    }

    /// <summary>Sends <paramref name="bytes"/> over TCP from one namespace to the other; returns (source sha, sink sha, sink bytes).</summary>
    public (string SourceSha, string SinkSha, long SinkBytes) Transfer(string fromNs, string toNs, string toIp, long bytes, int seed)
    {
        Process sink = Process.Start(Run.Info(toNs, Run.NetProbe("tcp-sink", "--port", "5301")))!;
        Task<string> sinkOut = sink.StandardOutput.ReadToEndAsync();
        try
        {
            (int code, string output, string err) = Run.In(fromNs, TimeSpan.FromSeconds(180), Run.NetProbe("tcp-source", "--connect", $"{toIp}:5301", "--bytes", bytes.ToString(), "--seed", seed.ToString()));
            Assert.True(code == 0, $"tcp source failed: {output}{err}\n{Logs()}");
            Assert.True(sink.WaitForExit(30_000), "sink did not finish");
            string so = sinkOut.Result;
            return (Field(output, "sha256"), Field(so, "sha256"), long.Parse(Field(so, "bytes")));
        }
        finally
        {
            if (!sink.HasExited)
            {
                sink.Kill(entireProcessTree: true);
            }

            sink.Dispose();
        }
    }

    /// <summary>
    /// <paramref name="count"/> TCP transfers at once (ports 5400 + i, seeds seed + i), each of
    /// <paramref name="bytes"/>; returns each one's (source sha, sink sha, sink bytes).
    /// </summary>
    public (string SourceSha, string SinkSha, long SinkBytes)[] ParallelTransfers(string fromNs, string toNs, string toIp, long bytes, int count, int seed)
    {
        var sinks = new List<(Process P, Task<string> Out)>();
        var sources = new List<(Process P, Task<string> Out)>();
        try
        {
            for (int i = 0; i < count; i++)
            {
                Process sink = Process.Start(Run.Info(toNs, Run.NetProbe("tcp-sink", "--port", (5400 + i).ToString())))!;
                sinks.Add((sink, sink.StandardOutput.ReadToEndAsync()));
            }

            Thread.Sleep(1500); // the sinks listen (a dotnet start each)
            for (int i = 0; i < count; i++)
            {
                Process source = Process.Start(Run.Info(fromNs, Run.NetProbe("tcp-source", "--connect", $"{toIp}:{5400 + i}", "--bytes", bytes.ToString(), "--seed", (seed + i).ToString())))!;
                sources.Add((source, source.StandardOutput.ReadToEndAsync()));
            }

            var results = new (string, string, long)[count];
            for (int i = 0; i < count; i++)
            {
                Assert.True(sources[i].P.WaitForExit(180_000) && sources[i].P.ExitCode == 0, $"tcp source {i} failed: {sources[i].Out.Result}\n{Logs()}");
                Assert.True(sinks[i].P.WaitForExit(30_000), $"sink {i} did not finish");
                string so = sinks[i].Out.Result;
                results[i] = (Field(sources[i].Out.Result, "sha256"), Field(so, "sha256"), long.Parse(Field(so, "bytes")));
            }

            return results;
        }
        finally
        {
            foreach ((Process p, _) in sinks.Concat(sources))
            {
                if (!p.HasExited)
                {
                    p.Kill(entireProcessTree: true);
                }

                p.Dispose();
            }
        }
    }

    public static string Field(string output, string name) =>
        output.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith(name + "=", StringComparison.Ordinal))?[(name.Length + 1)..] ?? $"(no {name})";

    /// <summary>RX/TX counters of a TAP from `ip -s -j link`.</summary>
    public (long RxBytes, long RxPackets, long TxBytes, long TxPackets) Counters(string ns, string tap)
    {
        (_, string output, _) = Run.In(ns, "ip", "-s", "-j", "link", "show", tap);
        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement s = doc.RootElement[0].GetProperty("stats64");
        return (s.GetProperty("rx").GetProperty("bytes").GetInt64(), s.GetProperty("rx").GetProperty("packets").GetInt64(),
            s.GetProperty("tx").GetProperty("bytes").GetInt64(), s.GetProperty("tx").GetProperty("packets").GetInt64());
    }

    public static long RssAnonKb(Process p)
    {
        // `ip netns exec` execs the daemon: the PID we hold is the daemon's.
        string status = File.ReadAllText($"/proc/{p.Id}/status");
        string line = status.Split('\n').First(l => l.StartsWith("RssAnon:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
    }

    public static void Kill(Process? p, int signal)
    {
        if (p is null || p.HasExited)
        {
            return;
        }

        _ = Tmds.Linux.LibC.kill(p.Id, signal);
        if (!p.WaitForExit(15_000))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
    }

    public void Dispose()
    {
        Kill(Driver, 15);
        Kill(Device, 15);
        Driver?.Dispose();
        Device?.Dispose();
        foreach (string ns in new[] { HostNs, CardNs })
        {
            Run.In(null, "ip", "netns", "del", ns);
        }

        File.Delete(WindowFile);
        File.Delete(RegisterFile);
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
