using System.Diagnostics;
using System.Text.RegularExpressions;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// Issue 13's acceptance: what a new user does. `./vop demo` from the checkout's root in a terminal (tmux),
/// then every command its tour prints, exactly as printed: the ones that end by themselves through bash -c,
/// the interactive ones typed into terminals. Ctrl-C ends the demo, and nothing of it is left behind.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed partial class NewcomerPathTests
{
    private static readonly TimeSpan TourTimeout = TimeSpan.FromMinutes(4);

    [Fact]
    public void EveryCommandTheDemoPrintsWorksAsPrinted()
    {
        Run.RequireRoot();
        var before = Leftovers.Snapshot();
        using var tmux = new Tmux("newcomer", Run.RepoRoot());
        DemoSession? demo = null;
        try
        {
            demo = DemoSession.Start(tmux, "demo");
            Assert.NotEmpty(demo.Commands);
            Assert.All(demo.Commands, c => Assert.DoesNotContain("sudo", c.Line));
            Assert.Contains(demo.Commands, c => c.Line.StartsWith($"./vop status --run-dir {demo.RunDir}", StringComparison.Ordinal));
            Assert.Contains(demo.Commands, c => c.Line.StartsWith($"./vop console card0 --run-dir {demo.RunDir}", StringComparison.Ordinal));
            Assert.Contains(demo.Commands, c => c.Line.StartsWith("ssh -i ", StringComparison.Ordinal));
            if (File.Exists("/usr/bin/curl"))
            {
                Assert.Contains(demo.Commands, c => c.Line.Contains("curl -s 127.0.0.1:9465/metrics", StringComparison.Ordinal));
            }

            string sshdPidFile = Path.Combine(demo.Dir, "sshd.pid");
            Assert.True(File.Exists(sshdPidFile), $"the demo's sshd wrote no {sshdPidFile}");
            demo.SshdPid = int.Parse(File.ReadAllText(sshdPidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);

            foreach (TourCommand c in demo.Commands)
            {
                if (c.Interactive)
                {
                    RunInteractive(tmux, demo, c);
                }
                else
                {
                    RunToCompletion(demo, c);
                }
            }

            demo.Stop();
        }
        finally
        {
            demo?.ForceCleanup();
        }

        Leftovers.AssertNone(before, demo);
    }

    [Fact]
    public void TwoDemosAtOnceKeepToThemselves()
    {
        Run.RequireRoot();
        var before = Leftovers.Snapshot();
        using var tmux = new Tmux("newcomer2", Run.RepoRoot());
        DemoSession? a = null;
        DemoSession? b = null;
        try
        {
            a = DemoSession.Start(tmux, "demo-a", waitForTour: false);
            b = DemoSession.Start(tmux, "demo-b", waitForTour: false);
            a.WaitForTour();
            b.WaitForTour();
            Assert.NotEqual(a.RunDir, b.RunDir);
            foreach ((DemoSession self, DemoSession other) in new[] { (a, b), (b, a) })
            {
                TourCommand status = self.Commands.Single(c => c.Line.Contains(" status --run-dir ", StringComparison.Ordinal));
                (int code, string output) = Bash(status.Raw, TimeSpan.FromSeconds(60));
                Assert.True(code == 0, $"{status.Line} -> {code}:\n{output}");
                Assert.Contains("card0", output);
                Assert.Contains("host", output);
                Assert.DoesNotContain(other.Dir, output);
                Assert.DoesNotContain($"vopd{other.Pid}", output);

                // The printed capture line, bounded, while pinging in this demo's host namespace only.
                TourCommand capture = self.Commands.Single(c => c.Line.Contains(" capture card0 ", StringComparison.Ordinal));
                string pcap = CaptureFile(capture.Line);
                File.Delete(pcap);
                using Process ping = Run.Background(self.HostNs, "/dev/null", "ping", "-c", "20", "-i", "0.2", "10.177.0.2");
                (code, output) = Bash($"{capture.Line} --duration 3", TimeSpan.FromSeconds(60));
                ping.WaitForExit(10_000);
                Assert.True(code == 0, $"{capture.Line} --duration 3 -> {code}:\n{output}");
                Assert.True(File.Exists(pcap) && new FileInfo(pcap).Length > 24, $"{pcap}: no frames captured through {self.RunDir}");
                File.Delete(pcap);
            }

            a.Stop();
            b.Stop();
        }
        finally
        {
            a?.ForceCleanup();
            b?.ForceCleanup();
        }

        Leftovers.AssertNone(before, a);
        Leftovers.AssertNone(before, b);
    }

    private static void RunToCompletion(DemoSession demo, TourCommand c)
    {
        (int code, string output) = Bash(c.Raw, TimeSpan.FromSeconds(60));
        Assert.True(code == 0, $"`{c.Line}` exited {code}:\n{output}");
        if (c.Line.Contains(" status ", StringComparison.Ordinal))
        {
            Assert.Contains("card0", output);
        }
        else if (c.Line.Contains("/metrics", StringComparison.Ordinal))
        {
            Assert.Contains("vop_transmit_bytes_total{link=\"card0\"", output);
        }
        else if (c.Line.Contains("ping ", StringComparison.Ordinal))
        {
            Assert.Contains(" 0% packet loss", output);
        }
        else if (c.Line.Contains("link show vop0", StringComparison.Ordinal))
        {
            Assert.Contains("vop0:", output);
            Assert.Contains("RX:", output);
        }
        else
        {
            Assert.Fail($"the newcomer test does not know what `{c.Line}` ({c.Comment}) should print: teach it");
        }

        _ = demo;
    }

    private static void RunInteractive(Tmux tmux, DemoSession demo, TourCommand c)
    {
        string w = tmux.Window($"cmd{Interlocked.Increment(ref s_windows)}");
        if (c.Line.Contains(" console card0 ", StringComparison.Ordinal))
        {
            tmux.Type(w, c.Raw);
            Thread.Sleep(3000); // the console attaches and the card's shell shows its prompt
            tmux.Type(w, "echo newcomer-$RANDOM-marker");
            tmux.WaitFor(w, MarkerEchoed(), TimeSpan.FromSeconds(30), "the card's console shell did not answer");
            tmux.Keys(w, "C-]");
            tmux.WaitForShell(w, TimeSpan.FromSeconds(20), "Ctrl-] did not leave the console");
            tmux.Type(w, "echo console-exit=$?");
            tmux.WaitFor(w, new Regex("^console-exit=0$", RegexOptions.Multiline), TimeSpan.FromSeconds(20), "Ctrl-] did not leave the console with exit 0");
        }
        else if (c.Line.StartsWith("ssh ", StringComparison.Ordinal))
        {
            tmux.Type(w, c.Raw);
            Thread.Sleep(3000);
            tmux.Type(w, "hostname; echo ssh-$((6*7))-answered; exit");
            tmux.WaitFor(w, new Regex("^ssh-42-answered$", RegexOptions.Multiline), TimeSpan.FromSeconds(40), "the card's sshd did not answer over ssh-proxy");
            tmux.WaitForShell(w, TimeSpan.FromSeconds(20), "ssh did not end after exit"); // ssh reads ahead: type nothing more until it is gone
            tmux.Type(w, "echo ssh-exit=$?");
            tmux.WaitFor(w, new Regex("^ssh-exit=0$", RegexOptions.Multiline), TimeSpan.FromSeconds(20), "ssh did not end with exit 0");
            Assert.Contains(Environment.MachineName, tmux.Screen(w));
        }
        else if (c.Line.Contains(" capture card0 ", StringComparison.Ordinal))
        {
            string pcap = CaptureFile(c.Line);
            File.Delete(pcap);
            try
            {
                using Process ping = Run.Background(demo.HostNs, "/dev/null", "ping", "-c", "15", "-i", "0.2", "10.177.0.2");
                tmux.Type(w, c.Raw);
                Thread.Sleep(2500);
                tmux.Keys(w, "C-c");
                tmux.WaitForShell(w, TimeSpan.FromSeconds(20), "Ctrl-C did not stop the capture");
                tmux.Type(w, "echo capture-exit=$?");
                tmux.WaitFor(w, new Regex("^capture-exit=", RegexOptions.Multiline), TimeSpan.FromSeconds(20), "Ctrl-C did not stop the capture");
                ping.WaitForExit(10_000);
                Assert.True(File.Exists(pcap) && new FileInfo(pcap).Length > 24, $"{pcap}: missing or without frames; screen:\n{tmux.Screen(w)}");
            }
            finally
            {
                File.Delete(pcap);
            }
        }
        else if (c.Line.EndsWith(" bash", StringComparison.Ordinal) && c.Line.StartsWith("ip netns exec ", StringComparison.Ordinal))
        {
            tmux.Type(w, c.Raw);
            Thread.Sleep(1000);
            tmux.Type(w, "ip link show vop0 && echo card-shell-$((6*7)); exit");
            tmux.Type(w, "echo card-exit=$?");
            // Not anchored at the line start: the next command, typed ahead, may be echoed in front of this output.
            tmux.WaitFor(w, new Regex("card-shell-42$", RegexOptions.Multiline), TimeSpan.FromSeconds(20), "the card shell did not show vop0");
            tmux.WaitFor(w, new Regex("^card-exit=0$", RegexOptions.Multiline), TimeSpan.FromSeconds(20), "the card shell did not exit 0");
        }
        else
        {
            Assert.Fail($"the newcomer test does not know how to drive interactive `{c.Line}` ({c.Comment}): teach it");
        }
    }

    private static int s_windows;

    private static string CaptureFile(string line) => CaptureWrite().Match(line) is { Success: true } m
        ? Path.GetFullPath(m.Groups[1].Value, Run.RepoRoot())
        : throw new InvalidOperationException($"no -w FILE in `{line}`");

    /// <summary>Runs one line through bash in the repo root, as a user pasting it into a root shell there.</summary>
    private static (int Code, string Output) Bash(string line, TimeSpan timeout)
    {
        (int code, string output, string err) = Run.InDirectory(Run.RepoRoot(), timeout, "bash", "-c", line);
        return (code, output + err);
    }

    [GeneratedRegex(@"-w (\S+)")]
    private static partial Regex CaptureWrite();

    [GeneratedRegex(@"^newcomer-\d+-marker\r?$", RegexOptions.Multiline)]
    private static partial Regex MarkerEchoed();

    [GeneratedRegex(@"network namespaces vopd(\d+)-host")]
    private static partial Regex DemoPid();

    [GeneratedRegex(@"^  (\S.*?)\s+# (.*)$")]
    private static partial Regex TourLine();

    /// <summary>A tour line: <paramref name="Raw"/> as printed (without its two-space indent), the command before its # comment, the comment.</summary>
    private sealed record TourCommand(string Raw, string Line, string Comment)
    {
        public bool Interactive => Comment.StartsWith("interactive", StringComparison.Ordinal);
    }

    /// <summary>One `./vop demo` typed into its own tmux window.</summary>
    private sealed class DemoSession
    {
        private readonly Tmux _tmux;
        private readonly string _window;

        private DemoSession(Tmux tmux, string window)
        {
            _tmux = tmux;
            _window = window;
        }

        public int Pid { get; private set; }

        public string Dir => $"/run/vop-demo-{Pid}";

        public string RunDir => $"{Dir}/run";

        public string HostNs => $"vopd{Pid}-host";

        public int? SshdPid { get; set; }

        public List<TourCommand> Commands { get; } = [];

        public static DemoSession Start(Tmux tmux, string name, bool waitForTour = true)
        {
            var s = new DemoSession(tmux, tmux.Window(name));
            tmux.Type(s._window, "./vop demo; echo demo-exit=$?");
            Match m = tmux.WaitFor(s._window, DemoPid(), TimeSpan.FromMinutes(2), "./vop demo did not start");
            s.Pid = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            if (waitForTour)
            {
                s.WaitForTour();
            }

            return s;
        }

        public void WaitForTour()
        {
            Match end = _tmux.WaitFor(_window, new Regex("^(Logs: |demo-exit=)", RegexOptions.Multiline), TourTimeout, "the demo printed no tour");
            Assert.True(end.Value == "Logs: ", $"the demo ended before its tour:\n{_tmux.Screen(_window)}");
            string screen = _tmux.Screen(_window);
            string tour = screen[screen.IndexOf("The demo keeps running until Ctrl-C", StringComparison.Ordinal)..];
            foreach (string line in tour.Split('\n').Skip(1))
            {
                if (line.StartsWith("Logs: ", StringComparison.Ordinal))
                {
                    break;
                }

                Match m = TourLine().Match(line);
                if (m.Success)
                {
                    Commands.Add(new TourCommand(line[2..], m.Groups[1].Value, m.Groups[2].Value));
                }
                else
                {
                    Assert.DoesNotMatch(@"^ {2}\S", line); // an indented line is a command and must parse as one
                }
            }
        }

        /// <summary>Ctrl-C, as the tour says; the demo must clean up and exit 0.</summary>
        public void Stop()
        {
            _tmux.Keys(_window, "C-c");
            _tmux.WaitFor(_window, new Regex("^demo-exit=0$", RegexOptions.Multiline), TimeSpan.FromSeconds(90), "Ctrl-C did not end the demo with exit 0");
        }

        /// <summary>Whatever a failed test left running: by PID, then the demo's namespaces and directory.</summary>
        public void ForceCleanup()
        {
            if (Pid == 0)
            {
                return;
            }

            if (Alive(Pid, "dotnet"))
            {
                _ = Tmds.Linux.LibC.kill(Pid, 2);
                Run.WaitUntil(() => !Alive(Pid, "dotnet"), TimeSpan.FromSeconds(60));
                if (Alive(Pid, "dotnet"))
                {
                    _ = Tmds.Linux.LibC.kill(Pid, 9);
                }
            }

            if (SshdPid is int sshd && Alive(sshd, "sshd"))
            {
                _ = Tmds.Linux.LibC.kill(sshd, 15);
            }

            foreach (string ns in new[] { $"vopd{Pid}-host", $"vopd{Pid}-card" })
            {
                if (File.Exists($"/run/netns/{ns}"))
                {
                    Run.In(null, "ip", "netns", "del", ns);
                }
            }
        }

        public static bool Alive(int pid, string comm) =>
            File.Exists($"/proc/{pid}/comm") && File.ReadAllText($"/proc/{pid}/comm").Trim().StartsWith(comm, StringComparison.Ordinal);
    }

    /// <summary>What a demo may leave behind: its /run directory, netns, /dev/shm files, sshd, /run/vop/* dirs.</summary>
    private sealed record Leftovers(HashSet<string> Shm, HashSet<string> RunVop, bool RunSshd)
    {
        public static Leftovers Snapshot() => new(
            [.. Directory.EnumerateFileSystemEntries("/dev/shm")],
            Directory.Exists("/run/vop") ? [.. Directory.EnumerateFileSystemEntries("/run/vop")] : [],
            Directory.Exists("/run/sshd"));

        public static void AssertNone(Leftovers before, DemoSession? demo)
        {
            Assert.NotNull(demo);
            Assert.False(Directory.Exists(demo.Dir), $"{demo.Dir} is left");
            string netns = Run.In(null, "ip", "netns", "list").Out;
            Assert.DoesNotContain($"vopd{demo.Pid}-", netns);
            Assert.DoesNotContain(Directory.EnumerateFileSystemEntries("/dev/shm"), f => !before.Shm.Contains(f));
            if (Directory.Exists("/run/vop"))
            {
                Assert.DoesNotContain(Directory.EnumerateFileSystemEntries("/run/vop"), f => !before.RunVop.Contains(f));
            }

            Assert.Equal(before.RunSshd, Directory.Exists("/run/sshd"));
            if (demo.SshdPid is int sshd)
            {
                Assert.False(DemoSession.Alive(sshd, "sshd"), $"the demo's sshd (pid {sshd}) outlived it");
            }

            Assert.False(DemoSession.Alive(demo.Pid, "dotnet"), $"the demo (pid {demo.Pid}) is still running");
        }
    }
}
