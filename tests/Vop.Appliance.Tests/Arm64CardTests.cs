using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Vop.Appliance.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Vop.Appliance.Tests;

/// <summary>
/// The arm64 card, for real: the native linux-arm64 vop (`VOP_ARM64_BINARY`) runs as the card in a QEMU
/// aarch64 `virt` guest (TCG, Debian's arm64 kernel), on a `pci` link over the guest's ivshmem-plain BAR2,
/// against the x86 host's vop mapping the /dev/shm file behind that BAR. Both role arrangements, one boot
/// each: ping both ways, a hashed 4 MiB TCP transfer each way, and the card's login console answering on
/// the host's console socket. Under TCG this proves the arm64 binary and the wire format across
/// architectures, not arm64's weaker memory ordering (docs/operations.md, "An arm64 card").
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class Arm64CardTests(ITestOutputHelper output) : IDisposable
{
    private readonly GuestBench _bench = new("va", 196);

    private string Window => $"/dev/shm/vop-e2e-{_bench.Ns}";

    private string RunDir => Path.Combine(_bench.Dir, "run");

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ArmCardCarriesNetAndConsoleOverTheIvshmemBar(bool cardIsDevice)
    {
        var clock = Stopwatch.StartNew();
        void Phase(string what) => output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{clock.Elapsed.TotalSeconds,6:F1} s  {what}"));

        object Net(string tap, bool device) => device
            ? new { type = "net", name = "net0", tap, mac = "52:54:00:a6:40:0a" }
            : new { type = "net", name = "net0", tap };
        string share = Path.Combine(_bench.Dir, "share");
        Directory.CreateDirectory(share);
        string hostConfig = Path.Combine(_bench.Dir, "host.json");
        File.WriteAllText(hostConfig, JsonSerializer.Serialize(new
        {
            metrics = new { listen = "off" },
            runDir = RunDir,
            links = new[]
            {
                new
                {
                    name = "card0", kind = "pci", role = cardIsDevice ? "driver" : "device", end = "host", path = Window, windowSize = "64M",
                    devices = new[] { Net("vh0", !cardIsDevice), new { type = "console", name = "console0", end = "host", ports = new[] { new { name = "console" } } } },
                },
            },
        }));
        File.WriteAllText(Path.Combine(share, "card.json"), JsonSerializer.Serialize(new
        {
            metrics = new { listen = "off" },
            links = new[]
            {
                new
                {
                    name = "host", kind = "pci", role = cardIsDevice ? "device" : "driver", end = "card", path = Arm64Guest.IvshmemBar2, windowSize = "64M", doorbell = "poll", runDir = "/run/vop",
                    devices = new[] { Net("vc0", cardIsDevice), new { type = "console", name = "console0", end = "card", ports = new[] { new { name = "console", command = new[] { "/bin/sh" } } } } },
                },
            },
        }));

        // The file behind the BAR exists before QEMU maps it; the host's vop maps the same file.
        using (FileStream f = File.Create(Window))
        {
            f.SetLength(64L << 20);
        }

        Process vop = _bench.StartVop(hostConfig);
        using var card = new Arm64Guest(share, GuestVm.IvshmemPlain(Window, "64M"), "card.json", Path.Combine(_bench.Dir, "guest.log"));
        string Logs() => $"--- host vop\n{_bench.Log}\n--- card vop\n{card.CardLog}";
        string up = card.WaitBoot(TimeSpan.FromSeconds(120));
        Phase(up);
        Assert.Contains("arch=aarch64", up, StringComparison.Ordinal);
        Assert.Contains($"ivshmem={GuestVm.IvshmemBdf}:{64L << 20}", up, StringComparison.Ordinal);

        // init started the card's vop (vop_run=/vop/card.json) before GUEST-UP; a card vop that died says so at once.
        string carrier = string.Empty;
        Run.WaitUntil(() => (carrier = card.Exec("cat /sys/class/net/vc0/carrier 2>/dev/null || pidof vop || echo CARD-VOP-$((0))-GONE", TimeSpan.FromSeconds(20)).Output).Contains("\n1\n", StringComparison.Ordinal) || carrier.Contains("CARD-VOP-0-GONE", StringComparison.Ordinal), TimeSpan.FromSeconds(120));
        Assert.True(carrier.Contains("\n1\n", StringComparison.Ordinal), $"no carrier on the card's vc0 ({(carrier.Contains("CARD-VOP-0-GONE", StringComparison.Ordinal) ? "the card's vop exited" : "vop still running")})\n{Logs()}\n--- console\n{card.Tail()}");
        Assert.True(Run.WaitUntil(() => Run.HasCarrier(_bench.Ns, "vh0"), TimeSpan.FromSeconds(30)), Logs());
        Phase("carrier on both TAPs");
        Run.Must(Run.In(_bench.Ns, "ip", "addr", "add", _bench.HostIp + "/24", "dev", "vh0"), "host addr");
        Assert.Equal(0, card.Exec($"ip addr add {_bench.GuestIp}/24 dev vc0", TimeSpan.FromSeconds(20)).Code);

        var traffic = new GuestTraffic(card, _bench.Ns, _bench.HostIp, _bench.GuestIp, Logs);
        traffic.PingBothWays();
        Phase("ping both ways");
        traffic.GuestToHost(4, seed: 21);
        Phase("4 MiB card → host, SHA-256 equal");
        traffic.HostToGuest(4L << 20, seed: 22);
        Phase("4 MiB host → card, SHA-256 equal");
        traffic.ConsoleAnswers(Path.Combine(RunDir, "card0", "console.sock"), "aarch64");
        Phase("card's console answered on the host's socket");
        Assert.False(vop.HasExited, _bench.Log);
        Assert.DoesNotContain("Unhandled exception", card.CardLog, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        _bench.Dispose();
        File.Delete(Window);
    }
}
