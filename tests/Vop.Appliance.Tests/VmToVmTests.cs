using System.Diagnostics;
using System.Text.Json;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// VM to VM (the Stratos arrangement): `vop ivshmem-server` on the host serves one window and the doorbells,
/// with no vop data path on the host; two TCG guests join it with ivshmem-doorbell devices and each runs
/// vop inside (`pci` kind, `doorbell: ivshmem`, the BAR2 resource file), one the device side, the other the
/// driver side, each learning whom to ring from the ivshmem id the other publishes in its state block.
/// Ping and a hashed TCP transfer between the guests' TAPs, the driver guest's login console reached from
/// the device guest's port socket, and SIGKILL of either guest's vop recovered by restarting it.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class VmToVmTests : IDisposable
{
    private const string Link = "peer";
    private readonly GuestBench _bench = new("v2v", 196);
    private Process? _server;

    private string Socket => Path.Combine(_bench.Dir, "ivshmem.sock");

    private string ServerLog => File.Exists(Path.Combine(_bench.Dir, "server.log")) ? File.ReadAllText(Path.Combine(_bench.Dir, "server.log")) : "(no log)";

    [Fact]
    public void TwoGuestsOnVopIvshmemServerCarryNetAndConsoleAndSurviveAVopKill()
    {
        var clock = Stopwatch.StartNew();
        _server = Run.Background(null, Path.Combine(_bench.Dir, "server.log"), Run.Vop("ivshmem-server", "--socket", Socket, "--size", "64M", "--vectors", "16"));

        // QEMU connects when it creates the chardev: the server listens first.
        Assert.True(Run.WaitUntil(() => File.Exists(Socket), TimeSpan.FromSeconds(30)), ServerLog);

        string bar = $"/sys/bus/pci/devices/{GuestVm.IvshmemBdf}/resource2";
        string deviceConfig = Path.Combine(_bench.Dir, "device-guest.json");
        string driverConfig = Path.Combine(_bench.Dir, "driver-guest.json");
        File.WriteAllText(deviceConfig, JsonSerializer.Serialize(new
        {
            metrics = new { listen = "off" },
            runDir = "/run/vop",
            links = new[]
            {
                new
                {
                    name = Link, kind = "pci", role = "device", end = "host", path = bar, windowSize = "64M", doorbell = "ivshmem",
                    devices = new object[]
                    {
                        new { type = "net", name = "net0", tap = "vd0", mac = "52:54:00:0e:2e:0b" },
                        new { type = "console", name = "console0", end = "host", ports = new[] { new { name = "console" } } },
                    },
                },
            },
        }));
        File.WriteAllText(driverConfig, JsonSerializer.Serialize(new
        {
            metrics = new { listen = "off" },
            runDir = "/run/vop",
            links = new[]
            {
                new
                {
                    name = Link, kind = "pci", role = "driver", end = "card", path = bar, windowSize = "64M", doorbell = "ivshmem",
                    devices = new object[]
                    {
                        new { type = "net", name = "net0", tap = "vr0" },
                        new { type = "console", name = "console0", end = "card", ports = new[] { new { name = "console", command = new[] { "/bin/sh" } } } },
                    },
                },
            },
        }));

        // Both guests boot at once (TCG; 15-60 s each on a shared 2-core machine).
        string[] devices = [.. GuestVm.IvshmemDoorbell(Socket, 16), .. GuestVm.HostRoot()];
        using var deviceGuest = new GuestVm(devices, string.Empty, Path.Combine(_bench.Dir, "device-guest.log"), iommu: true);
        using var driverGuest = new GuestVm(devices, string.Empty, Path.Combine(_bench.Dir, "driver-guest.log"), iommu: true);
        deviceGuest.WaitBoot(TimeSpan.FromSeconds(120));
        driverGuest.WaitBoot(TimeSpan.FromSeconds(120));
        TimeSpan booted = clock.Elapsed;
        Assert.True(Run.WaitUntil(() => ServerLog.Contains("peer 0 connected", StringComparison.Ordinal) && ServerLog.Contains("peer 1 connected", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), ServerLog);

        string Logs() => $"--- server\n{ServerLog}\n--- device guest vop\n{GuestLog(deviceGuest)}\n--- driver guest vop\n{GuestLog(driverGuest)}";
        BindVfio(deviceGuest);
        BindVfio(driverGuest);
        StartVop(deviceGuest, deviceConfig);
        StartVop(driverGuest, driverConfig);
        WaitCarrier(deviceGuest, "vd0", up: true, Logs);
        WaitCarrier(driverGuest, "vr0", up: true, Logs);
        TimeSpan linked = clock.Elapsed;
        Assert.Equal(0, deviceGuest.Exec("ip addr add 10.196.0.1/24 dev vd0", TimeSpan.FromSeconds(10)).Code);
        Assert.Equal(0, driverGuest.Exec("ip addr add 10.196.0.2/24 dev vr0", TimeSpan.FromSeconds(10)).Code);

        PingBothWays(deviceGuest, driverGuest, Logs);
        Transfer(from: driverGuest, to: deviceGuest, toIp: "10.196.0.1", mib: 2, Logs);
        Transfer(from: deviceGuest, to: driverGuest, toIp: "10.196.0.2", mib: 2, Logs);

        // The driver guest's login console (a shell on a PTY there), typed into from the device guest's port socket.
        (int cc, string co) = deviceGuest.Exec(
            $"(sleep 2; printf 'echo vm2vm-console-$((6*7))\\r'; sleep 6) | {Chroot} {VopCommand} console {Link} --run-dir /run/vop 2>&1 | tr -d '\\r' | grep -c 'vm2vm-console-42'",
            TimeSpan.FromSeconds(60));
        Assert.True(cc == 0, $"no answer from the driver guest's console through the device guest's port socket: {co}\n{Logs()}");

        // SIGKILL the driver guest's vop (its QEMU stays on the server): the device side drops carrier by the
        // heartbeat, and a restarted vop is taken back.
        KillVop(driverGuest);
        WaitCarrier(deviceGuest, "vd0", up: false, Logs);
        StartVop(driverGuest, driverConfig);
        WaitCarrier(deviceGuest, "vd0", up: true, Logs);
        WaitCarrier(driverGuest, "vr0", up: true, Logs);
        Assert.Equal(0, driverGuest.Exec("ip addr replace 10.196.0.2/24 dev vr0", TimeSpan.FromSeconds(10)).Code);
        PingBothWays(deviceGuest, driverGuest, Logs);
        TimeSpan driverBack = clock.Elapsed;

        // SIGKILL the device guest's vop: the driver side drops carrier, the restarted device side lays the
        // window out afresh, and the driver renegotiates by itself.
        KillVop(deviceGuest);
        WaitCarrier(driverGuest, "vr0", up: false, Logs);
        StartVop(deviceGuest, deviceConfig);
        WaitCarrier(deviceGuest, "vd0", up: true, Logs);
        WaitCarrier(driverGuest, "vr0", up: true, Logs);
        Assert.Equal(0, deviceGuest.Exec("ip addr replace 10.196.0.1/24 dev vd0", TimeSpan.FromSeconds(10)).Code);
        PingBothWays(deviceGuest, driverGuest, Logs);
        TimeSpan deviceBack = clock.Elapsed;

        // Doorbells between the guests arrived as MSI-X interrupts through VFIO in both (a polled end shows none).
        Assert.True(MsixInterrupts(deviceGuest) > 10, Logs());
        Assert.True(MsixInterrupts(driverGuest) > 10, Logs());

        // The server itself: still up, ends cleanly on SIGTERM and takes its socket with it.
        Assert.False(_server.HasExited, ServerLog);
        LinkPair.Kill(_server, 15);
        Assert.Equal(0, _server.ExitCode);
        Assert.False(File.Exists(Socket), ServerLog);
        Console.WriteLine($"vm2vm: guests booted {booted.TotalSeconds:F0} s, linked {linked.TotalSeconds:F0} s, driver vop restarted {driverBack.TotalSeconds:F0} s, device vop restarted {deviceBack.TotalSeconds:F0} s");
    }

    private static string Chroot => "chroot /mnt /usr/bin/env -i PATH=/usr/bin:/bin HOME=/run/home TMPDIR=/run/tmp DOTNET_CLI_HOME=/run/home DOTNET_NOLOGO=1";

    // vop from the host's own build, run from the host's root over 9p (read-only) in a chroot.
    private static string VopCommand => Run.VopBinary ?? $"{Run.In(null, "sh", "-c", $"readlink -f \"$(command -v {Run.Dotnet})\"").Out.Trim()} {Run.VopDll}";

    private static string GuestLog(GuestVm guest) => guest.HasExited ? "(guest exited)" : guest.Exec("tail -c 6000 /mnt/run/vop.log", TimeSpan.FromSeconds(20)).Output;

    private static void BindVfio(GuestVm guest)
    {
        string sys = $"/sys/bus/pci/devices/{GuestVm.IvshmemBdf}";
        (int code, string output) = guest.Exec($"echo vfio-pci > {sys}/driver_override && echo {GuestVm.IvshmemBdf} > /sys/bus/pci/drivers_probe && ls /dev/vfio/$(basename $(readlink {sys}/iommu_group))", TimeSpan.FromSeconds(20));
        Assert.True(code == 0, output);
    }

    private static void StartVop(GuestVm guest, string config)
    {
        (int code, string output) = guest.Exec($"{Chroot} {VopCommand} run --config {config} >> /mnt/run/vop.log 2>&1 & true", TimeSpan.FromSeconds(10));
        Assert.True(code == 0, output);
    }

    private static void KillVop(GuestVm guest) =>
        Assert.Equal(0, guest.Exec($"for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = {Run.VopProcessName} ] && kill -9 ${{p#/proc/}}; done; true", TimeSpan.FromSeconds(10)).Code);

    private static void WaitCarrier(GuestVm guest, string tap, bool up, Func<string> logs)
    {
        string want = up ? "\n1" : "\n0";
        bool ok = Run.WaitUntil(() => guest.Exec($"cat /sys/class/net/{tap}/carrier 2>/dev/null", TimeSpan.FromSeconds(20)).Output.Contains(want, StringComparison.Ordinal), TimeSpan.FromSeconds(90));
        Assert.True(ok, $"{tap} carrier did not go {(up ? "up" : "down")}\n{logs()}");
    }

    private static void PingBothWays(GuestVm device, GuestVm driver, Func<string> logs)
    {
        // The first pings may meet an ARP round or a link still settling: up to 20 tries, 3 answers needed.
        (int c1, string o1) = device.Exec("ping -c 3 -W 3 -w 40 10.196.0.2", TimeSpan.FromSeconds(60));
        Assert.True(c1 == 0, $"device guest → driver guest ping failed: {o1}\n{logs()}");
        (int c2, string o2) = driver.Exec("ping -c 3 -W 3 -w 40 10.196.0.1", TimeSpan.FromSeconds(60));
        Assert.True(c2 == 0, $"driver guest → device guest ping failed: {o2}\n{logs()}");
    }

    /// <summary>Random bytes from one guest's busybox nc to the other's; both SHA-256s must match.</summary>
    private static void Transfer(GuestVm from, GuestVm to, string toIp, int mib, Func<string> logs)
    {
        Assert.Equal(0, to.Exec("rm -f /tmp/in /tmp/in.done; (nc -l -p 5313 > /tmp/in; touch /tmp/in.done) & sleep 0.5", TimeSpan.FromSeconds(20)).Code);
        (int gc, string made) = from.Exec($"dd if=/dev/urandom of=/tmp/out bs=64k count={mib * 16} 2>/dev/null && sha256sum /tmp/out", TimeSpan.FromSeconds(60));
        Assert.True(gc == 0, made);
        string sent = made.Split('\n').Select(l => l.Trim()).First(l => l.EndsWith("/tmp/out", StringComparison.Ordinal) && l.Length > 64)[..64];
        (int nc, string no) = from.Exec($"nc {toIp} 5313 < /tmp/out; rm -f /tmp/out", TimeSpan.FromSeconds(180));
        Assert.True(nc == 0, no + logs());
        (int wc, string got) = to.Exec("n=0; while [ ! -e /tmp/in.done ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done; ls -l /tmp/in; sha256sum /tmp/in; rm -f /tmp/in", TimeSpan.FromSeconds(60));
        Assert.True(wc == 0, got);
        Assert.Contains($" {(long)mib << 20} ", got, StringComparison.Ordinal);
        Assert.Contains(sent + "  /tmp/in", got, StringComparison.Ordinal);
    }

    private static long MsixInterrupts(GuestVm guest) =>
        guest.Exec("grep vfio-msix /proc/interrupts", TimeSpan.FromSeconds(10)).Output.Split('\n')
            .Where(l => l.Contains("vfio-msix[", StringComparison.Ordinal))
            .Sum(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture));

    public void Dispose()
    {
        LinkPair.Kill(_server, 15);
        _server?.Dispose();
        _bench.Dispose();
    }
}
