using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// The pci link kind with vop itself inside a QEMU guest (TCG), its window the ivshmem BAR2
/// (`/sys/bus/pci/devices/0000:00:05.0/resource2`). Polled: an ivshmem-plain BAR over a /dev/shm file that
/// the host's vop maps too, first with the host end as device side, then with the guest end as device
/// side. Interrupts: an ivshmem-doorbell BAR served by the host vop's loopback link (its ivshmem server),
/// the guest's vop ringing through the BAR0 Doorbell register and woken by MSI-X on VFIO eventfds.
/// Each time ping and hashed TCP between the host's TAP and the guest's TAP.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class PciGuestTests : IDisposable
{
    private readonly GuestBench _bench = new("vg", 197);

    private string Window => $"/dev/shm/vop-e2e-{_bench.Ns}";

    private string Socket => Path.Combine(_bench.Dir, "ivshmem.sock");

    private string HostLog => _bench.Log;

    private string RunDir => Path.Combine(_bench.Dir, "run");

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void VopInsideAGuestCarriesTheNetPathOverTheIvshmemBar(bool guestIsDevice, bool interrupts)
    {
        object Net(string tap, bool device) => device
            ? new { type = "net", name = "net0", tap, mac = "52:54:00:0e:2e:0a" }
            : new { type = "net", name = "net0", tap };
        object hostConsole = new { type = "console", name = "console0", end = "host", ports = new[] { new { name = "console" } } };
        object cardConsole = new { type = "console", name = "console0", end = "card", ports = new[] { new { name = "console", command = new[] { "/bin/sh" } } } };
        string hostConfig = Path.Combine(_bench.Dir, "host.json");
        string cardConfig = Path.Combine(_bench.Dir, "card.json");
        File.WriteAllText(hostConfig, JsonSerializer.Serialize(new
        {
            metrics = new { listen = "off" },
            runDir = RunDir,
            links = new object[]
            {
                interrupts
                    ? new { name = "card0", kind = "loopback", role = "device", end = "host", socket = Socket, windowSize = "64M", devices = new[] { Net("vh0", true), hostConsole } }
                    : new { name = "card0", kind = "pci", role = guestIsDevice ? "driver" : "device", end = "host", path = Window, windowSize = "64M", devices = new[] { Net("vh0", !guestIsDevice), hostConsole } },
            },
        }));
        File.WriteAllText(cardConfig, JsonSerializer.Serialize(new
        {
            metrics = new { listen = "off" },
            links = new[] { new { name = "host", kind = "pci", role = guestIsDevice ? "device" : "driver", end = "card", path = $"/sys/bus/pci/devices/{GuestVm.IvshmemBdf}/resource2", windowSize = "64M", doorbell = interrupts ? "ivshmem" : "poll", runDir = "/run/vop", devices = new[] { Net("vc0", guestIsDevice), cardConsole } } },
        }));

        // The file behind the BAR exists before QEMU maps it; the host's vop maps the same file.
        using (FileStream f = File.Create(Window))
        {
            f.SetLength(64L << 20);
        }

        Process vop = _bench.StartVop(hostConfig);
        if (interrupts)
        {
            // QEMU connects to the ivshmem server when it creates the chardev: the server listens first.
            Assert.True(Run.WaitUntil(() => File.Exists(Socket), TimeSpan.FromSeconds(30)), HostLog);
        }

        string[] bar = interrupts ? GuestVm.IvshmemDoorbell(Socket, 16) : GuestVm.IvshmemPlain(Window, "64M");
        using var guest = new GuestVm([.. bar, .. GuestVm.HostRoot()], string.Empty, Path.Combine(_bench.Dir, "guest.log"), iommu: interrupts);
        guest.WaitBoot(TimeSpan.FromSeconds(90));
        string GuestLog() => guest.Exec("cat /mnt/run/vop.log", TimeSpan.FromSeconds(10)).Output;
        string sys = $"/sys/bus/pci/devices/{GuestVm.IvshmemBdf}";
        if (interrupts)
        {
            // Before vfio-pci claims it: the guest's peer id from the server, in IVPosition (BAR0 + 8).
            (int pc, string position) = guest.Exec($"echo 1 > {sys}/enable && devmem $(( $(head -1 {sys}/resource | cut -d' ' -f1) + 8 )) 32", TimeSpan.FromSeconds(10));
            Assert.True(pc == 0 && position.Contains("0x00000001", StringComparison.Ordinal), "IVPosition: " + position);
            Assert.Equal(0, guest.Exec($"echo 0 > {sys}/enable", TimeSpan.FromSeconds(10)).Code);
        }

        string enable = interrupts
            ? $"echo vfio-pci > {sys}/driver_override && echo {GuestVm.IvshmemBdf} > /sys/bus/pci/drivers_probe && ls /dev/vfio/$(basename $(readlink {sys}/iommu_group))"
            : $"echo 1 > {sys}/enable";
        (int ec, string eo) = guest.Exec(enable, TimeSpan.FromSeconds(20));
        Assert.True(ec == 0, eo);

        // vop from the host's own build, run from the host's root over 9p (read-only) in a chroot.
        string vopCommand = Run.VopBinary ?? $"{Run.In(null, "sh", "-c", $"readlink -f \"$(command -v {Run.Dotnet})\"").Out.Trim()} {Run.VopDll}";
        void StartGuestVop()
        {
            (int sc, string so) = guest.Exec(
                $"chroot /mnt /usr/bin/env -i PATH=/usr/bin:/bin HOME=/run/home TMPDIR=/run/tmp DOTNET_CLI_HOME=/run/home DOTNET_NOLOGO=1 " +
                $"{vopCommand} run --config {cardConfig} >> /mnt/run/vop.log 2>&1 & true", TimeSpan.FromSeconds(10));
            Assert.True(sc == 0, so);
            bool guestCarrier = Run.WaitUntil(() => guest.Exec("cat /sys/class/net/vc0/carrier 2>/dev/null", TimeSpan.FromSeconds(10)).Output.Contains("\n1", StringComparison.Ordinal), TimeSpan.FromSeconds(120));
            Assert.True(guestCarrier, $"no carrier on the guest's vc0\n--- guest vop\n{GuestLog()}\n--- host vop\n{HostLog}");
        }

        StartGuestVop();
        Assert.True(Run.WaitUntil(() => Run.HasCarrier(_bench.Ns, "vh0"), TimeSpan.FromSeconds(30)), HostLog);
        Run.Must(Run.In(_bench.Ns, "ip", "addr", "add", _bench.Subnet + ".1/24", "dev", "vh0"), "host addr");
        Assert.Equal(0, guest.Exec($"ip addr add {_bench.Subnet}.2/24 dev vc0", TimeSpan.FromSeconds(10)).Code);

        var traffic = new GuestTraffic(guest, _bench.Ns, _bench.Subnet + ".1", _bench.Subnet + ".2", () => $"--- host vop\n{HostLog}\n--- guest vop\n{GuestLog()}");
        traffic.PingBothWays();
        traffic.GuestToHost(4, seed: 11);
        traffic.HostToGuest(4L << 20, seed: 12);
        Assert.False(vop.HasExited, HostLog);

        // The guest's login console (a shell on a PTY in the guest) over the same link, from the host's port socket.
        using (var console = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            console.Connect(new UnixDomainSocketEndPoint(Path.Combine(RunDir, "card0", "console.sock")));
            console.ReceiveTimeout = 1000;
            var seen = new StringBuilder();
            bool answered = Run.WaitUntil(
                () =>
                {
                    console.Send(Encoding.ASCII.GetBytes("echo vm-console-$((6*7))\r"));
                    var buffer = new byte[4096];
                    try
                    {
                        int n;
                        while ((n = console.Receive(buffer)) > 0)
                        {
                            seen.Append(Encoding.ASCII.GetString(buffer, 0, n));
                            if (seen.ToString().Contains("vm-console-42", StringComparison.Ordinal))
                            {
                                return true;
                            }
                        }
                    }
                    catch (SocketException)
                    {
                    }

                    return false;
                },
                TimeSpan.FromSeconds(60));
            Assert.True(answered, $"no answer from the guest's console: {seen}\n--- host vop\n{HostLog}\n--- guest vop\n{GuestLog()}");
        }

        if (interrupts)
        {
            // vop in the guest dies while QEMU (the ivshmem peer) stays: the host notices by the heartbeat,
            // drops carrier, and takes the restarted vop back.
            Assert.Equal(0, guest.Exec($"for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = {Run.VopProcessName} ] && kill -9 ${{p#/proc/}}; done; true", TimeSpan.FromSeconds(10)).Code);
            Assert.True(Run.WaitUntil(() => !Run.HasCarrier(_bench.Ns, "vh0"), TimeSpan.FromSeconds(20)), "host kept carrier after the guest's vop died\n" + HostLog);
            Assert.Contains("heartbeat stood still", HostLog, StringComparison.Ordinal);
            StartGuestVop();
            Assert.True(Run.WaitUntil(() => Run.HasCarrier(_bench.Ns, "vh0"), TimeSpan.FromSeconds(30)), HostLog);
            Assert.Equal(0, guest.Exec($"ip addr replace {_bench.Subnet}.2/24 dev vc0", TimeSpan.FromSeconds(10)).Code);
            Run.Must(Run.In(_bench.Ns, "ip", "addr", "replace", _bench.Subnet + ".1/24", "dev", "vh0"), "host addr");
            traffic.PingBothWays();
            traffic.HostToGuest(2L << 20, seed: 13);

            // The host's doorbells arrived as MSI-X interrupts through VFIO (a polled end would show none).
            string irqs = guest.Exec("grep vfio-msix /proc/interrupts", TimeSpan.FromSeconds(10)).Output;
            long total = irqs.Split('\n').Where(l => l.Contains("vfio-msix[", StringComparison.Ordinal))
                .Sum(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(total > 10, irqs);
        }
    }

    public void Dispose()
    {
        _bench.Dispose();
        File.Delete(Window);
    }
}
