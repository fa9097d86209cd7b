using System.Diagnostics;
using System.Text.Json;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// vop as the vhost-user back-end of a real QEMU guest (TCG) whose stock Linux virtio_net driver drives
/// the NIC: ping and hashed TCP both ways between the guest and vop's TAP, then a guest reboot and a
/// killed-and-restarted QEMU, each recovered without touching vop.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class VhostUserGuestTests : IDisposable
{
    private static int s_counter;
    private readonly string _ns;
    private readonly string _dir;
    private readonly string _subnet;
    private Process? _vop;

    public VhostUserGuestTests()
    {
        Run.RequireRoot();
        Assert.True(File.Exists("/usr/bin/qemu-system-x86_64"), "qemu-system-x86_64 is missing (test.sh installs qemu-system-x86)");
        int n = Interlocked.Increment(ref s_counter);
        _ns = $"vu{Environment.ProcessId % 100000}x{n}";
        _subnet = $"10.198.{(Environment.ProcessId + n) % 250}";
        _dir = Path.Combine("/tmp", $"vop-e2e-{_ns}");
        Directory.CreateDirectory(_dir);
        Run.Must(Run.In(null, "ip", "netns", "add", _ns), "ip netns add");
        Run.Must(Run.In(null, "ip", "-n", _ns, "link", "set", "lo", "up"), "lo up");
    }

    private string Socket => Path.Combine(_dir, "vhost.sock");

    private string HostIp => _subnet + ".1";

    private string GuestIp => _subnet + ".2";

    private string Log => File.Exists(Path.Combine(_dir, "vop.log")) ? File.ReadAllText(Path.Combine(_dir, "vop.log")) : "(no log)";

    [Fact]
    public void StockVirtioNetGuestReachesTheTapAndSurvivesRebootAndQemuRestart()
    {
        string config = Path.Combine(_dir, "vop.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new
        {
            metrics = new { listen = "127.0.0.1:9477" },
            links = new[]
            {
                new
                {
                    name = "vm0", kind = "vhost-user", socket = Socket, runDir = Path.Combine(_dir, "run"),
                    devices = new[] { new { type = "net", name = "net0", tap = "vu0", mac = "52:54:00:0e:2e:09" } },
                },
            },
        }));
        _vop = Run.Background(_ns, Path.Combine(_dir, "vop.log"), Run.Vop("run", "--config", config));
        Assert.True(Run.WaitUntil(() => File.Exists(Socket), TimeSpan.FromSeconds(30)), Log);
        Run.Must(Run.In(_ns, "ip", "addr", "add", HostIp + "/24", "dev", "vu0"), "tap addr");
        int vopPid = _vop.Id;

        using (var guest = new GuestVm(Socket, GuestIp + "/24", Path.Combine(_dir, "guest1.log")))
        {
            string up = guest.WaitBoot(TimeSpan.FromSeconds(90));
            Assert.Contains("eth0=52:54:00", up, StringComparison.Ordinal);
            (int dc, string driver) = guest.Exec("basename $(readlink /sys/class/net/eth0/device/driver)", TimeSpan.FromSeconds(20));
            Assert.True(dc == 0 && driver.Contains("virtio_net", StringComparison.Ordinal), driver);
            Assert.True(Run.WaitUntil(() => HasCarrier(), TimeSpan.FromSeconds(30)), "no carrier on vu0\n" + Log);

            PingBothWays(guest);
            GuestToHost(guest, 8, seed: 1);
            HostToGuest(guest, 8L << 20, seed: 2);

            // A guest reboot stays inside QEMU: the driver resets the device and negotiates again.
            guest.Send("reboot -f");
            guest.WaitBoot(TimeSpan.FromSeconds(90));
            Assert.True(Run.WaitUntil(() => HasCarrier(), TimeSpan.FromSeconds(30)), "no carrier after the guest rebooted\n" + Log);
            PingBothWays(guest);
            GuestToHost(guest, 4, seed: 3);

            // QEMU dies without a word: vop drops carrier and waits for the next front-end.
            guest.Kill();
            Assert.True(Run.WaitUntil(() => !HasCarrier(), TimeSpan.FromSeconds(15)), "carrier stayed up after QEMU was killed\n" + Log);
        }

        using (var guest = new GuestVm(Socket, GuestIp + "/24", Path.Combine(_dir, "guest2.log")))
        {
            guest.WaitBoot(TimeSpan.FromSeconds(90));
            Assert.True(Run.WaitUntil(() => HasCarrier(), TimeSpan.FromSeconds(30)), "no carrier with the restarted QEMU\n" + Log);
            PingBothWays(guest);
            HostToGuest(guest, 4L << 20, seed: 4);

            // Metrics from the vhost-user queues: the guest's receive queue carried the host-to-guest bytes.
            (int sc, string scrape, string se) = Run.In(_ns, Run.Vop("_http-get", "http://127.0.0.1:9477/metrics"));
            Assert.True(sc == 0, scrape + se);
            string line = scrape.Split('\n').First(l => l.StartsWith("vop_transmit_bytes_total{link=\"vm0\",device=\"net0\",queue=\"rx0\"}", StringComparison.Ordinal));
            Assert.True(double.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture) >= 12 << 20, line);
            Assert.Contains("vop_link_up{link=\"vm0\",role=\"device\"} 1", scrape, StringComparison.Ordinal);
        }

        Assert.False(_vop.HasExited, "vop exited\n" + Log);
        Assert.Equal(vopPid, _vop.Id);
        Assert.DoesNotContain("refused", Log, StringComparison.Ordinal);
    }

    private bool HasCarrier()
    {
        (int code, string output, _) = Run.In(_ns, "ip", "link", "show", "vu0");
        return code == 0 && output.Contains("LOWER_UP", StringComparison.Ordinal) && !output.Contains("NO-CARRIER", StringComparison.Ordinal);
    }

    private void PingBothWays(GuestVm guest)
    {
        (int c1, string o1, string e1) = Run.In(_ns, "ping", "-c", "5", "-i", "0.2", "-W", "3", GuestIp);
        Assert.True(c1 == 0, $"host → guest ping failed: {o1}{e1}\n{Log}\n{guest.Tail()}");
        (int c2, string o2) = guest.Exec($"ping -c 3 -W 3 {HostIp}", TimeSpan.FromSeconds(30));
        Assert.True(c2 == 0, $"guest → host ping failed: {o2}");
    }

    /// <summary>The guest sends a file of random bytes over TCP to a sink beside vop's TAP; both SHA-256s must match.</summary>
    private void GuestToHost(GuestVm guest, int mib, int seed)
    {
        (int gc, string made) = guest.Exec($"dd if=/dev/urandom of=/tmp/out{seed} bs=64k count={mib * 16} 2>/dev/null && sha256sum /tmp/out{seed}", TimeSpan.FromSeconds(60));
        Assert.True(gc == 0, made);
        string guestSha = made.Split('\n').Select(l => l.Trim()).First(l => l.EndsWith($"/tmp/out{seed}", StringComparison.Ordinal) && l.Length > 64)[..64];
        using Process sink = Process.Start(Run.Info(_ns, Run.Vop("_tcp-sink", "--port", "5311")))!;
        Task<string> sinkOut = sink.StandardOutput.ReadToEndAsync();
        try
        {
            Assert.True(Run.WaitUntil(() => Run.In(_ns, "ss", "-ltn", "sport = :5311").Out.Contains("5311", StringComparison.Ordinal), TimeSpan.FromSeconds(20)), "sink did not listen");
            (int nc, string sent) = guest.Exec($"nc {HostIp} 5311 < /tmp/out{seed}", TimeSpan.FromSeconds(120));
            Assert.True(nc == 0, sent);
            Assert.True(sink.WaitForExit(30_000), "sink did not finish");
            string so = sinkOut.Result;
            Assert.Equal(((long)mib << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), LinkPair.Field(so, "bytes"));
            Assert.Equal(guestSha, LinkPair.Field(so, "sha256"));
        }
        finally
        {
            if (!sink.HasExited)
            {
                sink.Kill();
            }
        }
    }

    /// <summary>vop's side sends seeded bytes into a busybox nc listening in the guest; the guest's SHA-256 must match.</summary>
    private void HostToGuest(GuestVm guest, long bytes, int seed)
    {
        guest.Exec($"rm -f /tmp/in; (nc -l -p 5312 > /tmp/in; echo NC-EXIT) & sleep 0.5", TimeSpan.FromSeconds(20));
        (int code, string output, string err) = Run.In(_ns, TimeSpan.FromSeconds(180), Run.Vop("_tcp-source", "--connect", $"{GuestIp}:5312", "--bytes", bytes.ToString(System.Globalization.CultureInfo.InvariantCulture), "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.True(code == 0, $"tcp source failed: {output}{err}\n{Log}");
        (int wc, string got) = guest.Exec("wait; ls -l /tmp/in; sha256sum /tmp/in", TimeSpan.FromSeconds(60));
        Assert.True(wc == 0, got);
        Assert.Contains($" {bytes} ", got, StringComparison.Ordinal);
        Assert.Contains(LinkPair.Field(output, "sha256") + "  /tmp/in", got, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        LinkPair.Kill(_vop, 15);
        _vop?.Dispose();
        Run.In(null, "ip", "netns", "del", _ns);
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
