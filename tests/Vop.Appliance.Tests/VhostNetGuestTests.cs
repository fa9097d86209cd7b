using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// The kernel's vhost-net as the device side's datapath (`datapath: "vhost-net"`), proven where the kernel
/// has it: this build machine's kernel has no /dev/vhost-net, the Debian kernel of the test guest does. One
/// TCG guest runs both daemons from the host's build over 9p: the device side in the guest's root namespace
/// with vhost-net, the driver side (vop's pump) in a network namespace, on a loopback link, exactly as the
/// host-side loopback pairs. Ping and a hashed transfer each way cross, the device side's TAP counters move,
/// and the device-side vop has no pump thread (vop-net-vd0) while the kernel's vhost worker for it exists.
/// With VOP_VHOSTNET_BENCH=N the same guest then measures TCP (iperf3, 5 s each way) in N rounds of vhost-net then the pump.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed partial class VhostNetGuestTests : IDisposable
{
    private const string DeviceIp = "10.197.0.1";
    private const string DriverIp = "10.197.0.2";
    private const string RunDir = "/run/vhn";
    private const string Card = "nsenter --net=/mnt/run/netns/card";
    private readonly GuestBench _bench = new("vhn", 197);

    // The driver side's pump writes its TAP through io_uring where that works; in this guest's Debian 6.1
    // kernel it does not deliver, and the pump falls back to writev after its first batch (TapWriteBatch).
    private static string Chroot => "chroot /mnt /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/run/home TMPDIR=/run/tmp DOTNET_CLI_HOME=/run/home DOTNET_NOLOGO=1";

    // vop from the host's own build, run from the host's root over 9p (read-only) in a chroot.
    private static string VopCommand => Run.VopBinary ?? $"{Run.In(null, "sh", "-c", $"readlink -f \"$(command -v {Run.Dotnet})\"").Out.Trim()} {Run.VopDll}";

    [Fact]
    public void DeviceSideOnKernelVhostNetCarriesPingAndHashedTransfersWithoutAPump()
    {
        string deviceConfig = WriteConfig("device.json", "device", "vd0", "vhost-net");
        string pumpConfig = WriteConfig("device-pump.json", "device", "vd0", "pump");
        string driverConfig = WriteConfig("driver.json", "driver", "vr0", null);

        using var guest = new GuestVm(GuestVm.HostRoot(), string.Empty, Path.Combine(_bench.Dir, "guest.log"));
        guest.WaitBoot(TimeSpan.FromSeconds(120));
        string Logs() => $"--- device vop\n{GuestFile(guest, "/mnt/run/vhn-device.log")}\n--- driver vop\n{GuestFile(guest, "/mnt/run/vhn-driver.log")}\n--- guest console\n{guest.Tail()}";

        (int dc, string dev) = guest.Exec("ls -l /dev/vhost-net", TimeSpan.FromSeconds(10));
        Assert.True(dc == 0, "the guest kernel has no /dev/vhost-net (tests/tools/guest loads vhost_net): " + dev);
        Must(guest, $"{Chroot} ip netns add card && {Chroot} ip -n card link set lo up");

        int devicePid = StartVop(guest, deviceConfig, "/mnt/run/vhn-device.log", inCard: false);
        StartVop(guest, driverConfig, "/mnt/run/vhn-driver.log", inCard: true);
        WaitCarrier(guest, Logs);
        Must(guest, $"ip addr add {DeviceIp}/24 dev vd0 && {Card} ip addr add {DriverIp}/24 dev vr0");
        Assert.Contains("datapath vhost-net", GuestFile(guest, "/mnt/run/vhn-device.log"), StringComparison.Ordinal);

        (long rx0, long tx0) = TapCounters(guest);
        PingBothWays(guest, Logs);
        Transfer(guest, fromCard: true, mib: 4, Logs);
        Transfer(guest, fromCard: false, mib: 4, Logs);

        // The kernel moved the frames: the device side's TAP counted them (4 MiB each way is at least 64 frames
        // even at 64 KiB TSO), while the device-side vop has no pump thread at all. The driver side's pump
        // thread shows that thread names are visible, and the kernel's worker for the device vop exists.
        (long rx1, long tx1) = TapCounters(guest);
        Assert.True(rx1 - rx0 > 50 && tx1 - tx0 > 50, $"vd0 counters did not move: rx {rx0}->{rx1}, tx {tx0}->{tx1}\n{Logs()}");
        string deviceThreads = guest.Exec($"cat /proc/{devicePid}/task/*/comm", TimeSpan.FromSeconds(10)).Output;
        Assert.Contains("vop-link-lo0", deviceThreads, StringComparison.Ordinal); // the PID is the device vop's
        Assert.DoesNotContain("vop-net-vd0", deviceThreads, StringComparison.Ordinal);
        string allThreads = guest.Exec("cat /proc/[0-9]*/task/*/comm 2>/dev/null | sort | uniq", TimeSpan.FromSeconds(20)).Output;
        Assert.Contains("vop-net-vr0", allThreads, StringComparison.Ordinal);

        // The kernel's worker is named after the thread that took ownership (VHOST_SET_OWNER): one of the device vop's.
        string owners = string.Join(' ', Regex.Matches(allThreads, @"vhost-(\d+)").Select(m => m.Groups[1].Value));
        Assert.True(owners.Length > 0, $"no vhost worker thread in the guest\n{allThreads}\n{Logs()}");
        Assert.True(guest.Exec($"for t in {owners}; do [ -e /proc/{devicePid}/task/$t ] && echo owner-found-$((40+2)); done; true", TimeSpan.FromSeconds(10)).Output.Contains("owner-found-42", StringComparison.Ordinal), $"vhost workers {owners} belong to no thread of the device vop {devicePid}");

        // Status says who moves the packets, with the TAP's counters instead of queue counters.
        (int sc, string status) = guest.Exec($"{Chroot} {VopCommand} status --run-dir {RunDir} --interval 0.2", TimeSpan.FromSeconds(60));
        Assert.True(sc == 0, status);
        Assert.Contains("datapath vhost-net: queue counters: kernel", status, StringComparison.Ordinal);
        Assert.Matches(TapLine(), status);
        (int jc, string json) = guest.Exec($"{Chroot} {VopCommand} status -j --run-dir {RunDir} --interval 0.2", TimeSpan.FromSeconds(60));
        Assert.True(jc == 0, json);
        Assert.Contains("\"datapath\": \"vhost-net\"", json, StringComparison.Ordinal);
        Assert.Contains("\"rx_packets\"", json, StringComparison.Ordinal);
        Console.WriteLine($"vhost-net guest: vd0 rx {rx1 - rx0} tx {tx1 - tx0} frames during the transfers; vhost workers of threads {owners}\n{status}");

        // A hostile driver, played through the device vop's own mapping (/proc/PID/mem): the posted receive
        // descriptors turn into zero-length, device-readable ones at address 0 (outside the buffer region).
        // The kernel's vhost refuses the ring at the next frame for the driver and signals the ring's error
        // eventfd; vop quarantines the device (kind "kernel"), the driver resets it and posts afresh, and a new
        // vhost-net session carries traffic again.
        ZeroReceiveDescriptors(guest, devicePid);
        guest.Exec($"ping -c 2 -W 1 {DriverIp}", TimeSpan.FromSeconds(30));
        Assert.True(
            Run.WaitUntil(() => GuestFile(guest, "/mnt/run/vhn-device.log").Contains("quarantined (NEEDS_RESET): kernel", StringComparison.Ordinal), TimeSpan.FromSeconds(60)),
            "the kernel's ring error did not quarantine the device\n" + Logs());
        Assert.True(
            Run.WaitUntil(() => Regex.Count(GuestFile(guest, "/mnt/run/vhn-device.log"), "datapath vhost-net") >= 2, TimeSpan.FromSeconds(90)),
            "no second vhost-net session after the reset\n" + Logs());
        WaitCarrier(guest, Logs);
        PingBothWays(guest, Logs);
        Console.WriteLine(string.Join('\n', GuestFile(guest, "/mnt/run/vhn-device.log").Split('\n').Where(l => l.Contains("quarantined", StringComparison.Ordinal) || l.Contains("vhost-net", StringComparison.Ordinal))));

        if (int.TryParse(Environment.GetEnvironmentVariable("VOP_VHOSTNET_BENCH"), CultureInfo.InvariantCulture, out int rounds) && rounds > 0)
        {
            // Same guest, same run, interleaved: vhost-net, pump, vhost-net, pump, ... (one device vop restart each).
            var results = new List<string>();
            for (int r = 0; r < 2 * rounds; r++)
            {
                bool kernel = r % 2 == 0;
                if (r > 0)
                {
                    StopVop(guest, devicePid);
                    devicePid = StartVop(guest, kernel ? deviceConfig : pumpConfig, "/mnt/run/vhn-device.log", inCard: false);
                    WaitCarrier(guest, Logs);
                    Must(guest, $"ip addr replace {DeviceIp}/24 dev vd0");
                    PingBothWays(guest, Logs);
                }

                string line = $"round={r / 2} datapath={(kernel ? "vhost-net" : "pump")} {Iperf(guest, Logs)}";
                results.Add(line);
                Console.WriteLine(line);
            }

            Console.WriteLine("vhost-net TCG guest bench:\n" + string.Join('\n', results));
            StopVop(guest, devicePid);
        }
        else
        {
            // A clean stop unbinds the TAP and reads the rings back from the kernel.
            StopVop(guest, devicePid);
            Assert.Contains("vhost-net stopped at receive ring", GuestFile(guest, "/mnt/run/vhn-device.log"), StringComparison.Ordinal);
        }
    }

    [GeneratedRegex(@"tap vd0: rx [1-9]\d* packets")]
    private static partial Regex TapLine();

    private string WriteConfig(string file, string role, string tap, string? datapath)
    {
        string path = Path.Combine(_bench.Dir, file);
        var device = new Dictionary<string, object> { ["type"] = "net", ["name"] = "net0", ["tap"] = tap };
        var link = new Dictionary<string, object>
        {
            ["name"] = "lo0", ["kind"] = "loopback", ["role"] = role, ["socket"] = $"{RunDir}/lo0.sock", ["devices"] = new[] { device },
        };
        if (role == "device")
        {
            link["windowSize"] = "16M";
            device["queueSize"] = 64;
            device["datapath"] = datapath!;
        }

        File.WriteAllText(path, JsonSerializer.Serialize(new { metrics = new { listen = "off" }, runDir = RunDir, links = new[] { link } }));
        return path;
    }

    /// <summary>
    /// Zeroes the receive ring's descriptor table (slot 0, queue entry 0's desc offset at 0x1108; 64 entries of
    /// 16 bytes) through /proc/PID/mem: every posted receive buffer becomes addr 0, length 0, device-readable.
    /// The driver rewrites a descriptor only when it reposts a buffer it reaped, so these stay as written.
    /// </summary>
    private static void ZeroReceiveDescriptors(GuestVm guest, int pid)
    {
        string script = string.Join("; ",
            $"P={pid}",
            "L=$(grep -m1 'memfd:vop-lo0' /proc/$P/maps)",
            "B=$((0x${L%%-*}))",
            "D=$(dd if=/proc/$P/mem bs=1 skip=$((B + 0x1108)) count=8 2>/dev/null | od -An -tu8 | tr -d ' ')",
            "dd if=/dev/zero of=/proc/$P/mem bs=1 seek=$((B + D)) count=1024 conv=notrunc 2>/dev/null",
            "Z=$(dd if=/proc/$P/mem bs=1 skip=$((B + D)) count=1024 2>/dev/null | od -An -v -tu1 | tr -d ' 0\\n')",
            "echo desc table at $((D)); [ -n \"$D\" ] && [ -z \"$Z\" ] && echo zeroed-$((40 + 2))");
        (int code, string output) = guest.Exec(script, TimeSpan.FromSeconds(30));
        Assert.True(code == 0 && output.Contains("zeroed-42", StringComparison.Ordinal), output);
    }

    private static void Must(GuestVm guest, string command)
    {
        (int code, string output) = guest.Exec(command, TimeSpan.FromSeconds(30));
        Assert.True(code == 0, $"{command}: {output}");
    }

    private static string GuestFile(GuestVm guest, string path) =>
        guest.HasExited ? "(guest exited)" : guest.Exec($"tail -c 5000 {path}", TimeSpan.FromSeconds(20)).Output;

    /// <summary>Starts a vop in the guest (the driver in namespace card); returns its PID (chroot, env and ip netns exec exec in place).</summary>
    private static int StartVop(GuestVm guest, string config, string log, bool inCard)
    {
        string netns = inCard ? "ip netns exec card " : string.Empty;
        (int code, string output) = guest.Exec($"{Chroot} {netns}{VopCommand} run --config {config} >> {log} 2>&1 & echo VOPPID=$!", TimeSpan.FromSeconds(10));
        Match m = Regex.Match(output, @"VOPPID=(\d+)");
        Assert.True(code == 0 && m.Success, output);
        return int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static void StopVop(GuestVm guest, int pid) =>
        Must(guest, $"kill -TERM {pid}; n=0; while [ -e /proc/{pid} ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done; [ ! -e /proc/{pid} ]");

    private static void WaitCarrier(GuestVm guest, Func<string> logs)
    {
        bool up = Run.WaitUntil(
            () => guest.Exec($"cat /sys/class/net/vd0/carrier 2>/dev/null; {Card} ip link show vr0 2>/dev/null", TimeSpan.FromSeconds(20)).Output is string o
                && o.Contains("\n1", StringComparison.Ordinal) && o.Contains("LOWER_UP", StringComparison.Ordinal),
            TimeSpan.FromSeconds(90));
        Assert.True(up, "vd0/vr0 carrier did not come up\n" + logs());
    }

    private static (long Rx, long Tx) TapCounters(GuestVm guest)
    {
        string o = guest.Exec("echo RX=$(cat /sys/class/net/vd0/statistics/rx_packets) TX=$(cat /sys/class/net/vd0/statistics/tx_packets)", TimeSpan.FromSeconds(10)).Output;
        Match m = Regex.Match(o, @"RX=(\d+) TX=(\d+)");
        Assert.True(m.Success, o);
        return (long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
    }

    private static void PingBothWays(GuestVm guest, Func<string> logs)
    {
        // The first pings may meet an ARP round: up to 40 s, 3 answers needed.
        (int c1, string o1) = guest.Exec($"ping -c 3 -W 3 -w 40 {DriverIp}", TimeSpan.FromSeconds(60));
        Assert.True(c1 == 0, $"device → driver ping failed: {o1}\n{logs()}");
        (int c2, string o2) = guest.Exec($"{Card} ping -c 3 -W 3 -w 40 {DeviceIp}", TimeSpan.FromSeconds(60));
        Assert.True(c2 == 0, $"driver → device ping failed: {o2}\n{logs()}");
    }

    /// <summary>Random bytes through busybox nc from one namespace to the other; both SHA-256s must match.</summary>
    private static void Transfer(GuestVm guest, bool fromCard, int mib, Func<string> logs)
    {
        string sender = fromCard ? Card + " " : string.Empty;
        string receiver = fromCard ? string.Empty : Card + " ";
        string to = fromCard ? DeviceIp : DriverIp;
        Must(guest, $"rm -f /tmp/in /tmp/in.done; ({receiver}nc -l -p 5313 > /tmp/in; touch /tmp/in.done) & sleep 0.5");
        (int gc, string made) = guest.Exec($"dd if=/dev/urandom of=/tmp/out bs=64k count={mib * 16} 2>/dev/null && sha256sum /tmp/out", TimeSpan.FromSeconds(60));
        Assert.True(gc == 0, made);
        string sent = made.Split('\n').Select(l => l.Trim()).First(l => l.EndsWith("/tmp/out", StringComparison.Ordinal) && l.Length > 64)[..64];
        (int nc, string no) = guest.Exec($"{sender}nc {to} 5313 < /tmp/out; rm -f /tmp/out", TimeSpan.FromSeconds(180));
        Assert.True(nc == 0, no + logs());
        (int wc, string got) = guest.Exec("n=0; while [ ! -e /tmp/in.done ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done; ls -l /tmp/in; sha256sum /tmp/in; rm -f /tmp/in", TimeSpan.FromSeconds(60));
        Assert.True(wc == 0, got);
        Assert.Contains($" {(long)mib << 20} ", got, StringComparison.Ordinal);
        Assert.Contains(sent + "  /tmp/in", got, StringComparison.Ordinal);
    }

    /// <summary>iperf3 (the host's, over 9p) 5 s each way; returns the Mbit/s card → device and device → card as name=value.</summary>
    private static string Iperf(GuestVm guest, Func<string> logs)
    {
        string Once(bool reverse)
        {
            Must(guest, $"{Chroot} ip netns exec card iperf3 -s -1 -D -p 5201 && sleep 1");
            (int c, string o) = guest.Exec($"{Chroot} iperf3 -c {DriverIp} -p 5201 -t 5 -f m {(reverse ? "-R" : string.Empty)} | grep receiver", TimeSpan.FromSeconds(60));
            Match m = Regex.Match(o, @"([\d.]+) Mbits/sec\s+receiver");
            Assert.True(c == 0 && m.Success, o + logs());
            return m.Groups[1].Value;
        }

        // Without -R the client (device side) sends: device → card. With -R: card → device.
        string toDevice = Once(reverse: true);
        string toCard = Once(reverse: false);
        return $"card_to_device_mbps={toDevice} device_to_card_mbps={toCard}";
    }

    public void Dispose() => _bench.Dispose();
}
