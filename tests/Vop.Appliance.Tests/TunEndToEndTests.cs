using System.Text.Json;
using System.Text.RegularExpressions;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// TUN mode end to end: two vop daemons in two namespaces over a loopback link, each end a real TAP or TUN.
/// The link carries Ethernet frames whatever the ends are, so every pairing works: ping over IPv4 and IPv6,
/// 256 MiB of hashed TCP each way arriving as GSO super-packets, ARP and neighbour discovery answered for a
/// TUN end, a non-IP frame from a TAP end dropped and counted as not_ip, the mode in `vop status`, and pumps
/// that allocate nothing after warm-up.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class TunEndToEndTests
{
    private const long Bytes = 256L << 20;

    /// <summary>The device-side TUN end's MAC: 52:54:00:0e:2e:01 (the config's) with the last byte inverted.</summary>
    private const string DeviceTunMac = "52:54:00:0e:2e:fe";

    /// <summary>The driver-side TUN end's MAC: the config-space MAC.</summary>
    private const string DriverTunMac = "52:54:00:0e:2e:01";

    [Theory]
    [InlineData("tun", "tun")]
    [InlineData("tap", "tun")]
    [InlineData("tun", "tap")]
    public void TunEndsPingBothFamiliesAndCarry256MiBEachWayAsGsoFrames(string hostMode, string cardMode)
    {
        using var pair = new LinkPair(hostMode: hostMode, cardMode: cardMode);
        pair.Up();
        string v6 = $"fd99:{pair.Subnet.Split('.')[2]}::";
        Run.Must(Run.In(pair.HostNs, "ip", "-6", "addr", "add", v6 + "1/64", "dev", pair.HostTap, "nodad"), "host v6 addr");
        Run.Must(Run.In(pair.CardNs, "ip", "-6", "addr", "add", v6 + "2/64", "dev", pair.CardTap, "nodad"), "card v6 addr");

        foreach ((string from, string to) in new[] { (pair.HostNs, pair.CardIp), (pair.CardNs, pair.HostIp), (pair.HostNs, v6 + "2"), (pair.CardNs, v6 + "1") })
        {
            (int code, string output, string err) = pair.Ping(from, to);
            Assert.True(code == 0, $"ping {to} from {from}: {output}{err}\n{pair.Logs()}");
            Assert.Contains(" 0% packet loss", output);
        }

        // Each way: the hash matches and the receiving interface (TAP or TUN) took super-packets, far more
        // bytes per packet than the 1500 MTU, so GSO frames crossed whole through the TUN framing.
        foreach ((string fromNs, string toNs, string toIp, string toIf, int seed) in new[]
        {
            (pair.HostNs, pair.CardNs, pair.CardIp, pair.CardTap, 21),
            (pair.CardNs, pair.HostNs, pair.HostIp, pair.HostTap, 22),
        })
        {
            var before = pair.Counters(toNs, toIf);
            (string src, string dst, long got) = pair.Transfer(fromNs, toNs, toIp, Bytes, seed);
            Assert.Equal(Bytes, got);
            Assert.Equal(src, dst);
            var after = pair.Counters(toNs, toIf);
            long perPacket = (after.RxBytes - before.RxBytes) / Math.Max(1, after.RxPackets - before.RxPackets);
            Assert.True(perPacket > 3000, $"{perPacket} bytes per packet into {toIf} ({hostMode}→{cardMode}): GSO frames did not cross whole");
        }

        // A TAP end facing a TUN end: its neighbour entries for the TUN end's addresses carry the MAC the TUN
        // end answers with (ARP for IPv4, neighbour solicitation for IPv6).
        if (hostMode != cardMode)
        {
            bool hostIsTap = hostMode == "tap";
            string tapNs = hostIsTap ? pair.HostNs : pair.CardNs;
            string tap = hostIsTap ? pair.HostTap : pair.CardTap;
            string tunIp = hostIsTap ? pair.CardIp : pair.HostIp;
            string tunIp6 = v6 + (hostIsTap ? "2" : "1");
            string tunMac = hostIsTap ? DriverTunMac : DeviceTunMac; // the host is the device side
            (_, string neigh4, _) = Run.In(tapNs, "ip", "-4", "neigh", "show", "dev", tap);
            (_, string neigh6, _) = Run.In(tapNs, "ip", "-6", "neigh", "show", "dev", tap);
            Assert.Matches($@"{Regex.Escape(tunIp)} lladdr {tunMac}", neigh4);
            Assert.Matches($@"{Regex.Escape(tunIp6)} lladdr {tunMac}", neigh6);

            // A frame that is not IP (an experimental EtherType) sent from the TAP end: dropped by the TUN end, counted.
            long before = NotIpDrops(pair, hostIsTap ? "card" : "host");
            string send = "import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('" + tap + "', 0)); " +
                "s.send(bytes.fromhex('" + tunMac.Replace(":", string.Empty, StringComparison.Ordinal) + "') + bytes.fromhex('020000000009') + bytes.fromhex('88b5') + bytes(46))";
            Run.Must(Run.In(tapNs, "python3", "-c", send), "send a non-IP frame");
            Assert.True(Run.WaitUntil(() => NotIpDrops(pair, hostIsTap ? "card" : "host") == before + 1, TimeSpan.FromSeconds(10)),
                $"not_ip stayed at {NotIpDrops(pair, hostIsTap ? "card" : "host")} (was {before})");
        }

        // vop status shows each end's mode, in text and JSON.
        (int sc, string text, string se) = Run.In(null, Run.Vop("status", "--interval", "0.2", "--run-dir", pair.RunDir));
        Assert.True(sc == 0, se);
        Assert.Contains($"device net0 (net, {hostMode})", Daemon(text, "host"));
        Assert.Contains($"device net0 (net, {cardMode})", Daemon(text, "card"));
        Assert.Equal(hostMode, NetDevice(pair, "host").GetProperty("mode").GetString());
        Assert.Equal(cardMode, NetDevice(pair, "card").GetProperty("mode").GetString());

        // Both pumps ran hot for 512 MiB and allocated nothing after warm-up (logged at a clean stop).
        LinkPair.Kill(pair.Driver, 15);
        LinkPair.Kill(pair.Device, 15);
        string logs = pair.Logs();
        MatchCollection m = Regex.Matches(logs, @"pump stopped after (\d+) busy loops; allocated (-?\d+) bytes after warm-up");
        Assert.True(m.Count >= 2, logs);
        foreach (Match x in m)
        {
            Assert.True(long.Parse(x.Groups[1].Value) > 1000, x.Value);
            Assert.Equal("0", x.Groups[2].Value);
        }
    }

    /// <summary>The text status's section of one daemon.</summary>
    private static string Daemon(string text, string name)
    {
        int at = text.IndexOf($"daemon {name} ", StringComparison.Ordinal);
        Assert.True(at >= 0, text);
        int next = text.IndexOf("daemon ", at + 7, StringComparison.Ordinal);
        return next < 0 ? text[at..] : text[at..next];
    }

    private static JsonElement NetDevice(LinkPair pair, string daemon)
    {
        (int code, string json, string err) = Run.In(null, Run.Vop("status", "-j", "--interval", "0.2", "--run-dir", pair.RunDir));
        Assert.True(code == 0, err);
        using JsonDocument doc = JsonDocument.Parse(json);
        JsonElement d = doc.RootElement.GetProperty("daemons").EnumerateArray().First(x => x.GetProperty("daemon").GetString() == daemon);
        return d.GetProperty("links")[0].GetProperty("devices").EnumerateArray().First(x => x.GetProperty("type").GetString() == "net").Clone();
    }

    private static long NotIpDrops(LinkPair pair, string daemon) =>
        NetDevice(pair, daemon).GetProperty("queues").EnumerateArray()
            .Sum(q => q.GetProperty("drops").TryGetProperty("not_ip", out JsonElement v) ? v.GetInt64() : 0);
}
