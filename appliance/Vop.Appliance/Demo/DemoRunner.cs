using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Vop.Appliance.Demo;

/// <summary>
/// `vop demo`: host and card in two network namespaces joined by a loopback link, the device side in the
/// host namespace and the driver side in the card namespace; addresses, ping and a TCP transfer across;
/// then either waits for Ctrl-C (showing how to look around) or, with --check, exits 0/1. Cleans up
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
        using var stop = new ManualResetEventSlim();
        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c =>
        {
            c.Cancel = true;
            stop.Set();
        });
        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.Set();
        });
        try
        {
            bool ok = demo.Bring(stop);
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
        private readonly List<Process> _daemons = [];

        public Demo(int pid)
        {
            _id = $"vopd{pid}";
            _hostNs = $"{_id}-host";
            _cardNs = $"{_id}-card";
            _dir = $"/run/vop-demo-{pid}";
        }

        public bool Bring(ManualResetEventSlim stop)
        {
            Directory.CreateDirectory(_dir);
            string socket = Path.Combine(_dir, "card0.sock");
            string runDir = Path.Combine(_dir, "run");
            string shell = File.Exists("/bin/bash") ? "/bin/bash" : "/bin/sh";
            File.WriteAllText(Path.Combine(_dir, "host.json"), $$"""
                {
                  "links": [
                    { "name": "card0", "kind": "loopback", "role": "device", "socket": "{{socket}}", "windowSize": "64M",
                      "devices": [ { "type": "net", "name": "net0", "tap": "vop-card0", "mac": "52:54:00:a1:b2:c3", "mtu": 1500 },
                                   { "type": "console", "name": "console0", "end": "host", "runDir": "{{runDir}}" } ] }
                  ]
                }
                """);
            File.WriteAllText(Path.Combine(_dir, "card.json"), $$"""
                {
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

            Step("ping across");
            (int pc, string po) = Shell.Run(_hostNs, [.. Shell.Self(), "_ping", CardAddress]);
            (int pc2, string po2) = Shell.Run(_cardNs, [.. Shell.Self(), "_ping", HostAddress]);
            Console.WriteLine($"  host -> card: {Summary(po)}");
            Console.WriteLine($"  card -> host: {Summary(po2)}");
            if (pc != 0 || pc2 != 0)
            {
                Console.Error.WriteLine("vop demo: ping failed");
                return false;
            }

            Step(Shell.Exists("iperf3") ? "throughput (iperf3, 5 s each way)" : "throughput (built-in TCP transfer, 1 GiB each way)");
            double h2c = Throughput(_hostNs, _cardNs, CardAddress);
            double c2h = Throughput(_cardNs, _hostNs, HostAddress);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  host -> card: {h2c:F2} Gbit/s"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  card -> host: {c2h:F2} Gbit/s"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"demo_ping_ok=1 demo_tcp_host_to_card_gbps={h2c:F2} demo_tcp_card_to_host_gbps={c2h:F2}"));
            return h2c > 0 && c2h > 0;
        }

        public void PrintTour()
        {
            Console.WriteLine();
            Console.WriteLine("The demo keeps running until Ctrl-C. Look around:");
            Console.WriteLine($"  sudo ip netns exec {_cardNs} ip -s link show vop0        # the card's NIC");
            Console.WriteLine($"  sudo ip netns exec {_hostNs} ping {CardAddress}            # host -> card");
            Console.WriteLine($"  sudo ip netns exec {_cardNs} bash                          # a shell on the 'card'");
            Console.WriteLine($"  sudo ethtool -k ... / ip -n {_hostNs} -d link show vop-card0");
            Console.WriteLine($"  logs: {_dir}/host.log  {_dir}/card.log   configs: {_dir}/host.json  {_dir}/card.json");
            string self = string.Join(' ', Shell.Self());
            Console.WriteLine();
            Console.WriteLine("The card's console (a shell on a PTY, carried by virtio-console; Ctrl-] leaves):");
            Console.WriteLine($"  sudo {self} console card0 --run-dir {_dir}/run");
            Console.WriteLine("SSH into the card over the console's ssh port (start an sshd in the card namespace first):");
            Console.WriteLine($"  sudo ip netns exec {_cardNs} /usr/sbin/sshd -o ListenAddress=127.0.0.1");
            Console.WriteLine($"  sudo ssh -o ProxyCommand='{self} ssh-proxy card0 --run-dir {_dir}/run' root@card0");
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

            Process sink = Shell.Start(toNs, Path.Combine(_dir, "sink.log"), [.. Shell.Self(), "_tcp-sink", "--port", "5201"]);
            (int c, string o) = Shell.Run(fromNs, TimeSpan.FromSeconds(60), [.. Shell.Self(), "_tcp-source", "--connect", $"{toAddress}:5201", "--bytes", (1L << 30).ToString(CultureInfo.InvariantCulture)]);
            sink.WaitForExit(5000);
            Shell.Stop(sink, TimeSpan.FromSeconds(1));
            Match g = Gbps().Match(o);
            return c == 0 && g.Success ? double.Parse(g.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        }

        private static bool WaitCarrier(string ns, string tap, ManualResetEventSlim stop)
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

        private static string Summary(string ping)
        {
            Match m = PingRtt().Match(ping);
            Match loss = PingLoss().Match(ping);
            return (loss.Success ? loss.Value : "?") + (m.Success ? $", rtt avg {m.Groups[2].Value} ms" : string.Empty);
        }

        private static string Tail(string file) => File.Exists(file) ? string.Join('\n', File.ReadLines(file).TakeLast(10)) + "\n" : string.Empty;
    }

    [GeneratedRegex(@"([\d.]+) Gbits/sec\s+\d*\s*receiver")]
    private static partial Regex IperfReceiver();

    [GeneratedRegex(@"gbps=([\d.]+)")]
    private static partial Regex Gbps();

    [GeneratedRegex(@"= ([\d.]+)/([\d.]+)/([\d.]+)")]
    private static partial Regex PingRtt();

    [GeneratedRegex(@"\d+% packet loss")]
    private static partial Regex PingLoss();
}
