using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// A stock Linux guest (TCG, one vCPU) whose virtio_net drives a two-pair vhost-user NIC served by vop
/// (queuePairs 2, QEMU queues=2, mq=on): the guest starts on one pair (one CPU), `ethtool -L eth0
/// combined 2` switches the second on (QEMU enables its rings, vop starts its pump), and both pairs
/// carry traffic both ways.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class VhostUserMultiqueueGuestTests : IDisposable
{
    private readonly GuestBench _bench = new("vq", 196);

    private string Socket => Path.Combine(_bench.Dir, "vhost.sock");

    [Fact]
    public void GuestSwitchesToTwoPairsWithEthtoolAndBothCarryTraffic()
    {
        string config = Path.Combine(_bench.Dir, "vop.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new
        {
            metrics = new { listen = "127.0.0.1:9478" },
            runDir = Path.Combine(_bench.Dir, "run"),
            links = new[]
            {
                new
                {
                    name = "vm0", kind = "vhost-user", socket = Socket,
                    devices = new[] { new { type = "net", name = "net0", tap = "vq0", queuePairs = 2 } },
                },
            },
        }));
        Process vop = _bench.StartVop(config);
        Assert.True(Run.WaitUntil(() => File.Exists(Socket), TimeSpan.FromSeconds(30)), _bench.Log);
        Run.Must(Run.In(_bench.Ns, "ip", "addr", "add", _bench.HostIp + "/24", "dev", "vq0"), "tap addr");

        using var guest = new GuestVm([.. GuestVm.VhostUserNic(Socket, queues: 2), .. GuestVm.HostRoot()], $"vop_ip={_bench.GuestIp}/24", Path.Combine(_bench.Dir, "guest.log"));
        guest.WaitBoot(TimeSpan.FromSeconds(120));
        Assert.True(Run.WaitUntil(() => Run.HasCarrier(_bench.Ns, "vq0"), TimeSpan.FromSeconds(30)), "no carrier on vq0\n" + _bench.Log);

        // The host's ethtool, run in the guest from the host's / over 9p.
        (int lc, string channels) = guest.Exec("chroot /mnt /usr/sbin/ethtool -l eth0", TimeSpan.FromSeconds(30));
        Assert.True(lc == 0, channels);
        Assert.True(Regex.IsMatch(channels, @"Pre-set maximums:[\s\S]*Combined:\s+2"), channels);
        (int sc, string set) = guest.Exec("chroot /mnt /usr/sbin/ethtool -L eth0 combined 2 && chroot /mnt /usr/sbin/ethtool -l eth0", TimeSpan.FromSeconds(30));
        Assert.True(sc == 0, $"ethtool -L eth0 combined 2: {set}\n{_bench.Log}");
        Assert.True(Regex.IsMatch(set, @"Current hardware settings:[\s\S]*Combined:\s+2"), set);
        Assert.True(Run.WaitUntil(() => Run.HasCarrier(_bench.Ns, "vq0"), TimeSpan.FromSeconds(30)), "no carrier after the switch\n" + _bench.Log);

        // New flows each way until both pairs have moved packets both ways: the host's multiqueue TAP hashes
        // flows to vop's pumps, the guest (one CPU, so no XPS) hashes its own to its transmit queues.
        var traffic = new GuestTraffic(guest, _bench.Ns, _bench.HostIp, _bench.GuestIp, () => _bench.Log);
        traffic.PingBothWays();
        for (int round = 0; round < 10 && !BothPairsMoved(); round++)
        {
            traffic.HostToGuest(1L << 20, seed: 20 + round);
            traffic.GuestToHost(1, seed: 40 + round);
        }

        Assert.True(BothPairsMoved(), "a pair carried nothing: " + Status() + "\n" + _bench.Log);
        Assert.False(vop.HasExited, _bench.Log);
        Assert.DoesNotContain("refused", _bench.Log, StringComparison.Ordinal);
    }

    private string Status()
    {
        (int code, string json, string err) = Run.In(_bench.Ns, Run.Vop("status", "-j", "--url", "http://127.0.0.1:9478"));
        Assert.True(code == 0, json + err);
        return json;
    }

    private bool BothPairsMoved()
    {
        using JsonDocument doc = JsonDocument.Parse(Status());
        JsonElement root = doc.RootElement;
        JsonElement link = root.TryGetProperty("daemons", out JsonElement daemons) ? daemons[0].GetProperty("links")[0] : root.GetProperty("links")[0];
        Dictionary<string, long> packets = link.GetProperty("devices")[0].GetProperty("queues").EnumerateArray()
            .ToDictionary(q => q.GetProperty("name").GetString()!, q => q.GetProperty("packets").GetInt64());
        return new[] { "rx0", "tx0", "rx1", "tx1" }.All(q => packets.TryGetValue(q, out long n) && n > 0);
    }

    public void Dispose() => _bench.Dispose();
}
