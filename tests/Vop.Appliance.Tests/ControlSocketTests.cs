using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// Each daemon's control socket (RUNDIR/control/NAME.sock): `vop status` and `vop capture` reach the daemons
/// by path from any network namespace, find them without being told which, say in one line when there is
/// none, and a daemon leaves nothing in its run directory when it stops (issue 13).
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class ControlSocketTests
{
    private static void AssertOneLine(string text)
    {
        Assert.Single(text.Trim().Split('\n'));
        Assert.DoesNotContain("Exception", text);
    }

    [Fact]
    public void StatusAndCaptureReachBothDaemonsFromTheRootNamespaceAndStoppedDaemonsLeaveNothing()
    {
        using var pair = new LinkPair(consoleCommand: ["/bin/sh", "-i"]);
        pair.Up();
        Assert.Equal(0, pair.Ping(pair.HostNs, pair.CardIp).Code);

        // Every daemon of the run directory, from outside both namespaces.
        (int code, string text, string err) = Run.In(null, Run.Vop("status", "--interval", "0.2", "--run-dir", pair.RunDir));
        Assert.True(code == 0, err);
        Assert.Contains($"daemon host (pid {pair.Device!.Id}, config {pair.HostConfig})", text);
        Assert.Contains($"daemon card (pid {pair.Driver!.Id}, config {pair.CardConfig})", text);
        Assert.Contains("link card0 (loopback): device side, UP", text);
        Assert.Contains("link host (loopback): driver side, UP", text);
        Assert.Matches(@"\n\s+rx0\s+host->card\s+[1-9]", text);
        Assert.Matches(@"\n\s+tx0\s+card->host\s+[1-9]", text);
        Assert.Contains("carries: which way a queue's buffers go, the same on both ends", text);

        // NAME keeps one link (or one daemon); an unknown one is one line.
        (code, text, err) = Run.In(null, Run.Vop("status", "card0", "-j", "--interval", "0.1", "--run-dir", pair.RunDir));
        Assert.True(code == 0, err);
        using (JsonDocument doc = JsonDocument.Parse(text))
        {
            JsonElement only = Assert.Single(doc.RootElement.GetProperty("daemons").EnumerateArray());
            Assert.Equal("host", only.GetProperty("daemon").GetString());
            Assert.Equal(pair.Device.Id, only.GetProperty("pid").GetInt32());
            Assert.Equal("card0", Assert.Single(only.GetProperty("links").EnumerateArray()).GetProperty("name").GetString());
        }

        (code, text, err) = Run.In(null, Run.Vop("status", "card9", "--interval", "0.1", "--run-dir", pair.RunDir));
        Assert.True(code == 1, $"exit {code}");
        Assert.Equal("vop status: no running daemon is named 'card9' or has a link 'card9' (running: card with host, host with card0)", err.Trim());

        // Capture of either end's link, from the root namespace, while a ping crosses.
        foreach (string link in new[] { "card0", "host" })
        {
            string pcap = Path.Combine(pair.Dir, link + ".pcap");
            using Process ping = Process.Start(Run.Info(pair.HostNs, ["ping", "-c", "30", "-i", "0.1", pair.CardIp]))!;
            (code, string output, err) = Run.In(null, TimeSpan.FromSeconds(60), Run.Vop("capture", link, "-w", pcap, "--count", "4", "--duration", "20", "--run-dir", pair.RunDir));
            ping.Kill();
            Assert.True(code == 0, output + err);
            Assert.Contains($"vop capture: 4 frames written to {pcap}", err);
        }

        // A second capture of a link being captured is refused with one line; the first goes on.
        using (Process first = Process.Start(Run.Info(null, Run.Vop("capture", "card0", "-w", Path.Combine(pair.Dir, "first.pcap"), "--duration", "30", "--run-dir", pair.RunDir)))!)
        {
            Thread.Sleep(1500);
            (code, string output, err) = Run.In(null, TimeSpan.FromSeconds(30), Run.Vop("capture", "card0", "-w", Path.Combine(pair.Dir, "second.pcap"), "--run-dir", pair.RunDir));
            Assert.True(code == 1, output + err);
            Assert.Equal("vop capture: daemon host: link 'card0' is already being captured (one capture at a time)", err.Trim());
            _ = Tmds.Linux.LibC.kill(first.Id, 2);
            Assert.True(first.WaitForExit(10_000), "the first capture did not stop on SIGINT");
            Assert.Equal(0, first.ExitCode);
        }

        // A link nobody serves names the daemons that are there.
        (code, _, err) = Run.In(null, TimeSpan.FromSeconds(30), Run.Vop("capture", "card9", "-w", Path.Combine(pair.Dir, "x.pcap"), "--run-dir", pair.RunDir));
        Assert.True(code == 1, err);
        Assert.Equal($"vop capture: no daemon serves link 'card9' (the daemons under {pair.RunDir}, card, host, do not have it; `vop status --run-dir {pair.RunDir}` lists their links)", err.Trim());

        // Stopped daemons take their sockets and directories with them.
        LinkPair.Kill(pair.Driver, 15);
        LinkPair.Kill(pair.Device, 15);
        Assert.Equal(0, pair.Device.ExitCode);
        Assert.Equal(0, pair.Driver.ExitCode);
        Assert.True(!Directory.Exists(pair.RunDir) || !Directory.EnumerateFileSystemEntries(pair.RunDir).Any(),
            "left in the run directory: " + string.Join(", ", Directory.EnumerateFileSystemEntries(pair.RunDir, "*", SearchOption.AllDirectories)));
        (code, _, err) = Run.In(null, Run.Vop("status", "--run-dir", pair.RunDir));
        Assert.True(code == 1, err);
        Assert.Equal($"vop status: no vop daemon is running under {pair.RunDir} (no {pair.RunDir}/control/*.sock; for a daemon with another runDir: --run-dir DIR)", err.Trim());
    }

    [Fact]
    public void ASecondDaemonOfTheSameNameIsRefusedAndTheFirstKeepsServing()
    {
        using var pair = new LinkPair();
        pair.StartDevice();
        string control = Path.Combine(pair.RunDir, "control", "host.sock");
        Assert.True(Run.WaitUntil(() => File.Exists(control), TimeSpan.FromSeconds(20)), "no control socket\n" + pair.Logs());

        // The same config again (another socket, so only the control socket collides).
        string twin = Path.Combine(pair.Dir, "twin", "host.json");
        Directory.CreateDirectory(Path.GetDirectoryName(twin)!);
        File.WriteAllText(twin, File.ReadAllText(pair.HostConfig).Replace(pair.Socket, Path.Combine(pair.Dir, "twin.sock"), StringComparison.Ordinal).Replace("\"vh0\"", "\"vh9\"", StringComparison.Ordinal));
        (int code, string output, string err) = Run.In(pair.HostNs, TimeSpan.FromSeconds(60), Run.Vop("run", "--config", twin));
        Assert.True(code == 1, $"exit {code}: {output}{err}");
        Assert.Contains($"vop: another vop daemon already serves {control}", output + err);

        (code, string text, err) = Run.In(null, Run.Vop("status", "host", "--interval", "0.1", "--run-dir", pair.RunDir));
        Assert.True(code == 0, err);
        Assert.Contains($"daemon host (pid {pair.Device!.Id}", text);
    }

    [Fact]
    public void StatusWithNoDaemonOrOnlyAStaleSocketIsOneLine()
    {
        string dir = Directory.CreateTempSubdirectory("vop-nostatus-").FullName;
        try
        {
            (int code, string output, string err) = Run.In(null, Run.Vop("status", "--run-dir", dir));
            Assert.True(code == 1, $"exit {code}: {output}{err}");
            Assert.Equal($"vop status: no vop daemon is running under {dir} (no {dir}/control/*.sock; for a daemon with another runDir: --run-dir DIR)", err.Trim());

            Directory.CreateDirectory(Path.Combine(dir, "control"));
            string stale = Path.Combine(dir, "control", "host.sock");
            using var left = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            left.Bind(new UnixDomainSocketEndPoint(stale)); // bound, never listening
            (code, output, err) = Run.In(null, Run.Vop("status", "--interval", "0.1", "--run-dir", dir));
            Assert.True(code == 1, $"exit {code}: {output}{err}");
            Assert.Equal($"vop status: no vop daemon is running under {dir} ({stale} is left from a daemon that stopped)", err.Trim());
            AssertOneLine(output + err);

            (code, output, err) = Run.In(null, Run.Vop("capture", "card0", "-w", Path.Combine(dir, "x.pcap"), "--run-dir", dir));
            Assert.True(code == 1, $"exit {code}: {output}{err}");
            Assert.Equal($"vop capture: no daemon serves link 'card0' (no vop daemon is running under {dir}; is vop running, and with --run-dir?)", err.Trim());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
