using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Vop.Appliance.Demo;

/// <summary>
/// `vop demo`: host and card in two network namespaces joined by a loopback link, the device side in the
/// host namespace and the driver side in the card namespace; addresses, ping and a TCP transfer across
/// (from threads of this process that joined the namespaces: <see cref="NetnsThread"/>); then either waits for Ctrl-C (showing how to look around) or, with --check, exits 0/1. Cleans up
/// everything it made.
/// </summary>
public static partial class DemoRunner
{
    private const string HostAddress = "10.177.0.1";
    private const string CardAddress = "10.177.0.2";

    public static int Run(bool check)
    {
        if (Tmds.Linux.LibC.geteuid() != 0)
        {
            Console.Error.WriteLine("vop demo: needs root for network namespaces and TAP devices (try: sudo ./vop demo)");
            return 1;
        }

        if (!Shell.Exists("ip"))
        {
            Console.Error.WriteLine("vop demo: the 'ip' command (iproute2) is missing");
            return 1;
        }

        var demo = new Demo(Environment.ProcessId);
        using var stop = new Cli.StopSignals();
        try
        {
            bool ok = demo.Bring(stop, check);
            if (!ok || check || stop.IsSet)
            {
                return ok ? 0 : 1;
            }

            demo.PrintTour();
            stop.Wait();
            Console.WriteLine("\nstopping the demo and cleaning up ...");
            return 0;
        }
        finally
        {
            demo.Cleanup();
        }
    }

    private sealed class Demo
    {
        private readonly string _id;
        private readonly string _hostNs;
        private readonly string _cardNs;
        private readonly string _dir;
        private readonly string _runDir;
        private readonly List<Process> _daemons = [];
        private Process? _sshd;
        private bool _madePrivsepDir;

        public Demo(int pid)
        {
            _id = $"vopd{pid}";
            _hostNs = $"{_id}-host";
            _cardNs = $"{_id}-card";
            _dir = $"/run/vop-demo-{pid}";
            _runDir = Path.Combine(_dir, "run");
        }

        public bool Bring(Cli.StopSignals stop, bool check)
        {
            // 0700: the throwaway SSH keys live here, and sshd's StrictModes wants no group or world write on the way to authorized_keys.
            Directory.CreateDirectory(_dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            string socket = Path.Combine(_dir, "card0.sock");
            string shell = File.Exists("/bin/bash") ? "/bin/bash" : "/bin/sh";
            File.WriteAllText(Path.Combine(_dir, "host.json"), $$"""
                {
                  "runDir": "{{_runDir}}",
                  "links": [
                    { "name": "card0", "kind": "loopback", "role": "device", "socket": "{{socket}}", "windowSize": "64M",
                      "devices": [ { "type": "net", "name": "net0", "tap": "vop-card0", "mac": "52:54:00:a1:b2:c3", "mtu": 1500 },
                                   { "type": "console", "name": "console0", "end": "host" } ] }
                  ]
                }
                """);
            File.WriteAllText(Path.Combine(_dir, "card.json"), $$"""
                {
                  "runDir": "{{_runDir}}",
                  "links": [
                    { "name": "host", "kind": "loopback", "role": "driver", "socket": "{{socket}}",
                      "devices": [ { "type": "net", "name": "net0", "tap": "vop0" },
                                   { "type": "console", "name": "console0", "end": "card",
                                     "ports": [ { "name": "console", "command": [ "{{shell}}", "-l" ] }, { "name": "ssh", "connect": "127.0.0.1:22" } ] } ] }
                  ]
                }
                """);

            Step($"network namespaces {_hostNs} and {_cardNs}");
            foreach (string ns in new[] { _hostNs, _cardNs })
            {
                Must(Shell.Run(null, "ip", "netns", "add", ns), $"ip netns add {ns}");
                Must(Shell.Run(null, "ip", "-n", ns, "link", "set", "lo", "up"), "lo up");
            }

            Step("device side (host) and driver side (card) daemons");
            _daemons.Add(Shell.Start(_hostNs, Path.Combine(_dir, "host.log"), [.. Shell.Self(), "run", "--config", Path.Combine(_dir, "host.json")]));
            _daemons.Add(Shell.Start(_cardNs, Path.Combine(_dir, "card.log"), [.. Shell.Self(), "run", "--config", Path.Combine(_dir, "card.json")]));

            if (!WaitCarrier(_hostNs, "vop-card0", stop) || !WaitCarrier(_cardNs, "vop0", stop))
            {
                Console.Error.WriteLine($"vop demo: the link did not come up; logs: {_dir}/host.log, {_dir}/card.log");
                Console.Error.WriteLine(Tail(Path.Combine(_dir, "host.log")) + Tail(Path.Combine(_dir, "card.log")));
                return false;
            }

            Must(Shell.Run(_hostNs, "ip", "addr", "add", $"{HostAddress}/24", "dev", "vop-card0"), "host address");
            Must(Shell.Run(_cardNs, "ip", "addr", "add", $"{CardAddress}/24", "dev", "vop0"), "card address");
            Console.WriteLine($"  host  {_hostNs}: vop-card0 {HostAddress}/24  (device side)");
            Console.WriteLine($"  card  {_cardNs}: vop0      {CardAddress}/24  (driver side)");

            // A first few echoes only to see the link carries traffic; the figures come after the throughput run:
            // freshly started daemons still run their per-packet path as tier-0 JIT code and compile it to tier 1
            // in the background, which on a small machine more than doubled the first round trips.
            Step("reachability (raw ICMP echo, 3 each way)");
            DemoPing.Result reachCard = Ping(_hostNs, CardAddress, warmUp: 0, count: 3);
            DemoPing.Result reachHost = Ping(_cardNs, HostAddress, warmUp: 0, count: 3);
            Console.WriteLine($"  host -> card: {reachCard.Received}/{reachCard.Sent} replies");
            Console.WriteLine($"  card -> host: {reachHost.Received}/{reachHost.Sent} replies");
            if (reachCard.Received == 0 || reachHost.Received == 0)
            {
                Console.Error.WriteLine($"vop demo: no ping reply across the link; logs: {_dir}/host.log, {_dir}/card.log");
                return false;
            }

            Step(Shell.Exists("iperf3") ? "throughput (iperf3, 5 s each way)" : $"throughput ({DemoStream.Method} each way)");
            double h2c = Throughput(_hostNs, _cardNs, CardAddress);
            double c2h = Throughput(_cardNs, _hostNs, HostAddress);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  host -> card: {h2c:F2} Gbit/s"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  card -> host: {c2h:F2} Gbit/s"));

            Step($"ping across ({DemoPing.Method})");
            DemoPing.Result toCard = Ping(_hostNs, CardAddress);
            DemoPing.Result toHost = Ping(_cardNs, HostAddress);
            Console.WriteLine($"  host -> card: {Summary(toCard)}");
            Console.WriteLine($"  card -> host: {Summary(toHost)}");
            if (!toCard.AllAnswered || !toHost.AllAnswered)
            {
                Console.Error.WriteLine("vop demo: ping failed");
                return false;
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"demo_ping_ok=1 demo_tcp_host_to_card_gbps={h2c:F2} demo_tcp_card_to_host_gbps={c2h:F2}"));
            if (h2c > 0 && c2h > 0 && !check)
            {
                StartSshd();
            }

            return h2c > 0 && c2h > 0;
        }

        /// <summary>
        /// Every indented line is a command that works exactly as printed in a root shell in the directory the
        /// demo was started from (tests run them); a trailing # comment says what it shows, and "interactive"
        /// when it does not end by itself.
        /// </summary>
        public void PrintTour()
        {
            string vop = Shell.Launcher();
            Console.WriteLine();
            Console.WriteLine("The demo keeps running until Ctrl-C. Look around (each line works as printed, in a root shell in this directory):");
            Cmd($"{vop} status --run-dir {_runDir}", "both daemons: links, devices, counters");
            if (Shell.Exists("curl"))
            {
                Cmd($"ip netns exec {_hostNs} curl -s 127.0.0.1:9465/metrics | grep vop_transmit_bytes_total", "the host daemon's Prometheus metrics");
            }

            Cmd($"ip netns exec {_cardNs} ip -s link show vop0", "the card's NIC and its counters");
            Cmd($"ip netns exec {_hostNs} ping -c 3 {CardAddress}", "host -> card");
            Cmd($"{vop} capture card0 -w /tmp/{_id}-card0.pcap --run-dir {_runDir}", "interactive: the frames crossing the link into a pcap file; Ctrl-C stops");
            Cmd($"{vop} console card0 --run-dir {_runDir}", "interactive: the card's console, a shell on a PTY carried by virtio-console; Ctrl-] leaves");
            if (_sshd is not null)
            {
                Cmd($"ssh -i {_dir}/id_ed25519 -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o ProxyCommand='{vop} ssh-proxy card0 --run-dir {_runDir}' root@card0",
                    "interactive: SSH into the card over the console's ssh port; exit leaves");
            }
            else
            {
                Console.WriteLine($"SSH into the card: {_sshdMissing}");
            }

            Cmd($"ip netns exec {_cardNs} bash", "interactive: a shell in the card's network namespace; exit leaves");
            Console.WriteLine($"Logs: {_dir}/host.log {_dir}/card.log   configs: {_dir}/host.json {_dir}/card.json");
        }

        private static void Cmd(string command, string comment) => Console.WriteLine($"  {command,-72} # {comment}");

        private string _sshdMissing = "no sshd here: apt install openssh-server, then run the demo again";

        /// <summary>
        /// An sshd in the card namespace on 127.0.0.1:22 (what the card console's "ssh" port connects to), with a
        /// throwaway host key and client key in the demo directory; stopped by <see cref="Cleanup"/>.
        /// </summary>
        private void StartSshd()
        {
            const string sshd = "/usr/sbin/sshd";
            if (!File.Exists(sshd) || !Shell.Exists("ssh-keygen") || !Shell.Exists("ssh"))
            {
                _sshdMissing = File.Exists(sshd) ? "no ssh client here: apt install openssh-client, then run the demo again"
                    : "no sshd here: apt install openssh-server, then run the demo again";
                return;
            }

            string hostKey = Path.Combine(_dir, "ssh_host_ed25519_key");
            string clientKey = Path.Combine(_dir, "id_ed25519");
            foreach (string key in new[] { hostKey, clientKey })
            {
                (int code, string output) = Shell.Run(null, "ssh-keygen", "-q", "-t", "ed25519", "-N", string.Empty, "-C", $"vop-demo-{_id}", "-f", key);
                if (code != 0)
                {
                    _sshdMissing = $"ssh-keygen failed ({output.Trim()}), so no SSH in this demo";
                    return;
                }
            }

            File.Copy(clientKey + ".pub", Path.Combine(_dir, "authorized_keys"));
            if (!Directory.Exists("/run/sshd"))
            {
                // Privilege separation needs it; removed again by Cleanup only because it was made here.
                Directory.CreateDirectory("/run/sshd", UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                _madePrivsepDir = true;
            }

            // -D: stays in the foreground, so the process started here is sshd itself (ip netns exec execs it) and Cleanup stops it by that PID.
            _sshd = Shell.Start(_cardNs, Path.Combine(_dir, "sshd.log"), sshd, "-D", "-e", "-f", "/dev/null", "-h", hostKey,
                "-o", "ListenAddress=127.0.0.1", "-o", $"AuthorizedKeysFile={_dir}/authorized_keys", "-o", $"PidFile={_dir}/sshd.pid");
            long deadline = Environment.TickCount64 + 10_000;
            while (!Listening(_cardNs, 22))
            {
                if (_sshd.HasExited || Environment.TickCount64 > deadline)
                {
                    _sshdMissing = $"sshd did not start in {_cardNs} (see {_dir}/sshd.log), so no SSH in this demo";
                    Shell.Stop(_sshd, TimeSpan.FromSeconds(2));
                    _sshd.Dispose();
                    _sshd = null;
                    return;
                }

                Thread.Sleep(100);
            }
        }

        private static bool Listening(string ns, int port)
        {
            try
            {
                return NetnsThread.Start(ns, "vop-demo-probe", () =>
                {
                    using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    try
                    {
                        s.Connect(IPAddress.Loopback, port);
                        return true;
                    }
                    catch (SocketException)
                    {
                        return false;
                    }
                }).GetAwaiter().GetResult();
            }
            catch (IOException)
            {
                return false;
            }
        }

        private double Throughput(string fromNs, string toNs, string toAddress)
        {
            if (Shell.Exists("iperf3"))
            {
                Process server = Shell.Start(toNs, Path.Combine(_dir, "iperf3.log"), "iperf3", "-s", "-1", "-B", toAddress);
                Thread.Sleep(500);
                (int code, string output) = Shell.Run(fromNs, TimeSpan.FromSeconds(30), "iperf3", "-c", toAddress, "-t", "5", "-f", "g");
                Shell.Stop(server, TimeSpan.FromSeconds(2));
                Match m = IperfReceiver().Match(output);
                return code == 0 && m.Success ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
            }

            return DemoStream.Run(fromNs, toNs, IPAddress.Parse(toAddress));
        }

        /// <summary>Pings from a thread inside <paramref name="ns"/>; a failure to ping at all is reported as no replies.</summary>
        private static DemoPing.Result Ping(string ns, string address, int warmUp = DemoPing.WarmUp, int count = DemoPing.Count)
        {
            try
            {
                return NetnsThread.Start(ns, "vop-demo-ping", () => DemoPing.Run(IPAddress.Parse(address), warmUp, count)).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                Console.Error.WriteLine($"vop demo: ping {address} in {ns}: {e.Message}");
                return new DemoPing.Result(count, 0, 0);
            }
        }

        private static bool WaitCarrier(string ns, string tap, Cli.StopSignals stop)
        {
            long deadline = Environment.TickCount64 + 60_000;
            while (Environment.TickCount64 < deadline && !stop.IsSet)
            {
                (int code, string output) = Shell.Run(ns, "ip", "link", "show", tap);
                if (code == 0 && output.Contains("LOWER_UP", StringComparison.Ordinal))
                {
                    return true;
                }

                Thread.Sleep(200);
            }

            return false;
        }

        public void Cleanup()
        {
            if (_sshd is not null)
            {
                Shell.Stop(_sshd, TimeSpan.FromSeconds(5));
                _sshd.Dispose();
            }

            if (_madePrivsepDir)
            {
                try
                {
                    Directory.Delete("/run/sshd");
                }
                catch (IOException)
                {
                    // Not empty: something else uses it now.
                }
            }

            foreach (Process p in _daemons)
            {
                Shell.Stop(p, TimeSpan.FromSeconds(10));
                p.Dispose();
            }

            foreach (string ns in new[] { _hostNs, _cardNs })
            {
                Shell.Run(null, "ip", "netns", "del", ns);
            }

            try
            {
                Directory.Delete(_dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }

        private static void Step(string what) => Console.WriteLine($"== {what}");

        private static void Must((int Code, string Output) r, string what)
        {
            if (r.Code != 0)
            {
                throw new InvalidOperationException($"{what} failed: {r.Output.Trim()}");
            }
        }

        private static string Summary(DemoPing.Result r) =>
            string.Create(CultureInfo.InvariantCulture, $"{r.Received}/{r.Sent} replies, {r.LossPercent}% packet loss") +
            (r.Received > 0 ? string.Create(CultureInfo.InvariantCulture, $", rtt median {r.MedianMs:F3} ms ({r.UserMedianMs:F3} ms as this process saw it)") : string.Empty);

        private static string Tail(string file) => File.Exists(file) ? string.Join('\n', File.ReadLines(file).TakeLast(10)) + "\n" : string.Empty;
    }

    [GeneratedRegex(@"([\d.]+) Gbits/sec\s+\d*\s*receiver")]
    private static partial Regex IperfReceiver();
}
