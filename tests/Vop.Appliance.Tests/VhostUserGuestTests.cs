using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
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
    private readonly GuestBench _bench = new("vu", 198);

    private string Socket => Path.Combine(_bench.Dir, "vhost.sock");

    private string Log => _bench.Log;

    [Fact]
    public void StockVirtioNetGuestReachesTheTapAndSurvivesRebootAndQemuRestart()
    {
        string config = Path.Combine(_bench.Dir, "vop.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new
        {
            metrics = new { listen = "127.0.0.1:9477" },
            runDir = Path.Combine(_bench.Dir, "run"),
            links = new[]
            {
                new
                {
                    name = "vm0", kind = "vhost-user", socket = Socket,
                    devices = new[] { new { type = "net", name = "net0", tap = "vu0" } },
                },
            },
        }));
        Process vop = _bench.StartVop(config);
        Assert.True(Run.WaitUntil(() => File.Exists(Socket), TimeSpan.FromSeconds(30)), Log);
        Run.Must(Run.In(_bench.Ns, "ip", "addr", "add", _bench.HostIp + "/24", "dev", "vu0"), "tap addr");
        int vopPid = vop.Id;

        using (var guest = new GuestVm(GuestVm.VhostUserNic(Socket), $"vop_ip={_bench.GuestIp}/24", Path.Combine(_bench.Dir, "guest1.log")))
        {
            string up = guest.WaitBoot(TimeSpan.FromSeconds(90));
            Assert.Contains("eth0=52:54:00", up, StringComparison.Ordinal);
            (int dc, string driver) = guest.Exec("basename $(readlink /sys/class/net/eth0/device/driver)", TimeSpan.FromSeconds(20));
            Assert.True(dc == 0 && driver.Contains("virtio_net", StringComparison.Ordinal), driver);
            Assert.True(Run.WaitUntil(() => HasCarrier(), TimeSpan.FromSeconds(30)), "no carrier on vu0\n" + Log);

            // The guest's driver took mergeable receive buffers: frames span page-sized buffers (num_buffers).
            Assert.Contains("mrg_rxbuf", Log, StringComparison.Ordinal);

            var traffic = new GuestTraffic(guest, _bench.Ns, _bench.HostIp, _bench.GuestIp, () => Log);
            traffic.PingBothWays();
            traffic.GuestToHost(8, seed: 1);
            traffic.HostToGuest(8L << 20, seed: 2);

            // Round trips one at a time, each at least one busy loop of the pump, so the allocation check
            // below sees a warm pump (>1000 loops) however much a loaded machine batches the transfers.
            (int fc, string fo, string fe) = Run.In(_bench.Ns, TimeSpan.FromSeconds(120), "ping", "-f", "-c", "1500", "-w", "90", _bench.GuestIp);
            Assert.True(fc == 0, $"flood ping: {fo}{fe}\n{Log}");

            // A guest reboot stays inside QEMU: the driver resets the device and negotiates again.
            guest.Send("reboot -f");
            guest.WaitBoot(TimeSpan.FromSeconds(90));
            Assert.True(Run.WaitUntil(() => HasCarrier(), TimeSpan.FromSeconds(30)), "no carrier after the guest rebooted\n" + Log);
            traffic.PingBothWays();
            traffic.GuestToHost(4, seed: 3);

            // QEMU dies without a word: vop drops carrier and waits for the next front-end.
            guest.Kill();
            Assert.True(Run.WaitUntil(() => !HasCarrier(), TimeSpan.FromSeconds(15)), "carrier stayed up after QEMU was killed\n" + Log);
        }

        // The pump that carried the transfers ran on guest memory without allocating after warm-up.
        MatchCollection pumps = Regex.Matches(Log, @"pump stopped after (\d+) busy loops; allocated (-?\d+) bytes after warm-up");
        Assert.True(pumps.Any(m => long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 1000), "no pump summary after more than 1000 busy loops\n" + Log);
        Assert.All(pumps.Where(m => m.Groups[2].Value != "-1"), m => Assert.Equal("0", m.Groups[2].Value));

        using (var guest = new GuestVm(GuestVm.VhostUserNic(Socket), $"vop_ip={_bench.GuestIp}/24", Path.Combine(_bench.Dir, "guest2.log")))
        {
            guest.WaitBoot(TimeSpan.FromSeconds(90));
            Assert.True(Run.WaitUntil(() => HasCarrier(), TimeSpan.FromSeconds(30)), "no carrier with the restarted QEMU\n" + Log);
            var traffic = new GuestTraffic(guest, _bench.Ns, _bench.HostIp, _bench.GuestIp, () => Log);
            traffic.PingBothWays();
            traffic.HostToGuest(4L << 20, seed: 4);

            // Metrics from the vhost-user queues: the guest's receive queue carried the host-to-guest bytes.
            (int sc, string scrape, string se) = Run.In(_bench.Ns, Run.NetProbe("http-get", "http://127.0.0.1:9477/metrics"));
            Assert.True(sc == 0, scrape + se);
            string line = scrape.Split('\n').First(l => l.StartsWith("vop_transmit_bytes_total{link=\"vm0\",device=\"net0\",queue=\"rx0\"}", StringComparison.Ordinal));
            Assert.True(double.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture) >= 12 << 20, line);
            Assert.Contains("vop_link_up{link=\"vm0\",role=\"device\"} 1", scrape, StringComparison.Ordinal);
            (int tc, string status, string te) = Run.In(_bench.Ns, Run.Vop("status", "--url", "http://127.0.0.1:9477"));
            Assert.True(tc == 0, status + te);
            Assert.Contains("link vm0 (vhost-user): device side, UP", status, StringComparison.Ordinal);
            Assert.False(vop.HasExited, "vop exited\n" + Log);
            Assert.Equal(vopPid, vop.Id);
            Assert.DoesNotContain("refused", Log, StringComparison.Ordinal);

            // Now vop dies under a running guest (an upgrade, a crash): QEMU (reconnect=1) comes back to the
            // new vop by itself, replays the rings' state, and the guest never notices.
            LinkPair.Kill(vop, 9);
            _bench.StartVop(config);
            Assert.True(Run.WaitUntil(() => HasCarrier(), TimeSpan.FromSeconds(60)), "no carrier after vop restarted under the guest\n" + Log);
            Run.Must(Run.In(_bench.Ns, "ip", "addr", "replace", _bench.HostIp + "/24", "dev", "vu0"), "tap addr");
            traffic.PingBothWays();
            traffic.HostToGuest(4L << 20, seed: 5);
            traffic.GuestToHost(4, seed: 6);
        }
    }

    private bool HasCarrier() => Run.HasCarrier(_bench.Ns, "vu0");

    public void Dispose() => _bench.Dispose();
}
