using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// The client verbs fail the way a newcomer can act on: one line saying what is wrong and what to do, a
/// non-zero exit, no stack trace, nothing hanging (issue 13).
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class CliErrorTests
{
    private static readonly string[] s_shell = ["/bin/sh", "-i"];

    /// <summary>One line, no stack trace, no exception type names.</summary>
    private static void AssertOneLine(string text)
    {
        string trimmed = text.Trim();
        Assert.Single(trimmed.Split('\n'));
        Assert.DoesNotContain("Exception", trimmed);
        Assert.DoesNotContain("   at ", trimmed);
    }

    [Fact]
    public void CaptureWithoutLibpcapNamesThePackage()
    {
        Run.RequireRoot();
        string dir = Directory.CreateTempSubdirectory("vop-nopcap-").FullName;
        try
        {
            // libpcap made unloadable in a private mount namespace: each file ldconfig knows for it becomes
            // /dev/null (dlopen: "file too short"), as good as absent for whoever loads it.
            string pcap = Path.Combine(dir, "card0.pcap");
            string vop = string.Join(' ', Run.Vop("capture", "card0", "-w", pcap, "--run-dir", Path.Combine(dir, "run")).Select(a => $"'{a}'"));
            string script = "set -e; n=0; for f in $(ldconfig -p | awk '/libpcap\\.so/ {print $NF}'); do mount --bind /dev/null \"$(readlink -f \"$f\")\"; n=$((n+1)); done; " +
                $"python3 -c 'import ctypes; ctypes.CDLL(\"libpcap.so.0.8\")' 2>/dev/null && {{ echo 'libpcap still loads' >&2; exit 99; }}; exec {vop}";
            (int code, string output, string err) = Run.In(null, TimeSpan.FromSeconds(60), "unshare", "-m", "--propagation", "private", "sh", "-c", script);
            Assert.True(code == 1, $"exit {code}: {output}{err}");
            Assert.Contains("vop capture: libpcap is not installed", err);
            Assert.Contains("libpcap0.8", err);
            AssertOneLine(output + err);
            Assert.False(File.Exists(pcap), "a failed capture left a file behind");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Theory]
    [InlineData("console", "console.sock")]
    [InlineData("ssh-proxy", "ssh.sock")]
    public void NoDaemonForTheLinkIsOneLine(string verb, string socket)
    {
        string dir = Directory.CreateTempSubdirectory("vop-nodaemon-").FullName;
        try
        {
            string runDir = Path.Combine(dir, "run");
            string[] args = [verb, "card0", "--run-dir", runDir];
            (int code, string output, string err) = Run.In(null, TimeSpan.FromSeconds(60), Run.Vop(args));
            Assert.True(code == 1, $"exit {code}: {output}{err}");
            Assert.Equal($"vop {verb}: no daemon serves link 'card0' (no {Path.Combine(runDir, "card0", socket)}; is vop running, and with --run-dir?)", err.Trim());
            AssertOneLine(output + err);

            // A socket file left by a daemon that stopped: the same diagnosis, not "connection refused".
            Directory.CreateDirectory(Path.Combine(runDir, "card0"));
            string stale = Path.Combine(runDir, "card0", socket);
            using var left = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            left.Bind(new UnixDomainSocketEndPoint(stale)); // bound, never listening (.NET unlinks it on dispose)
            (code, output, err) = Run.In(null, TimeSpan.FromSeconds(60), Run.Vop(args));
            Assert.True(code == 1, $"exit {code}: {output}{err}");
            Assert.Contains($"vop {verb}: no daemon serves link 'card0' ({stale} is left from a daemon that stopped", err);
            AssertOneLine(output + err);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void SecondConsoleClientIsToldItIsReadOnlyAndItsKeysDoNotReachTheCard()
    {
        using var pair = new LinkPair(consoleCommand: s_shell);
        pair.Up();
        string path = Path.Combine(pair.RunDir, "card0", "console.sock");
        Assert.True(Run.WaitUntil(() => File.Exists(path), TimeSpan.FromSeconds(10)), "no console.sock");

        // The first client holds the seat.
        using var first = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 200 };
        first.Connect(new UnixDomainSocketEndPoint(path));
        first.Send(Encoding.ASCII.GetBytes("\0vop1 rw\n"));
        var firstSeen = new StringBuilder();
        Assert.True(Run.WaitUntil(() => Drain(first, firstSeen).Contains("\0vop1 seat writer\n", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), "the first client was not told it holds the seat");

        // The second is told, on stderr, that it only watches; what it types does not reach the card.
        using (Process second = Start(pair, "console", "card0", "--run-dir", pair.RunDir))
        {
            Func<string> err = Collect(second);

            Assert.True(Run.WaitUntil(() => err().Contains("read-only", StringComparison.Ordinal), TimeSpan.FromSeconds(15)), "no read-only line: " + err());
            Assert.Contains("vop console: card0 console is in use by another client; read-only (use --force to take over)", err());
            second.StandardInput.Write("echo from-second-$((5+5))\r");
            second.StandardInput.Flush();
            first.Send(Frame("echo from-first-$((6+6))\r"));
            Assert.True(Run.WaitUntil(() => Drain(first, firstSeen).Contains("from-first-12", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), "the writer's line did not reach the card: " + firstSeen);
            Thread.Sleep(1000);
            Assert.DoesNotContain("from-second-10", Drain(first, firstSeen));
            second.StandardInput.Close();
            Assert.True(second.WaitForExit(10_000), "vop console did not leave when its input ended");
            second.WaitForExit();
            Assert.Single(err().Trim().Split('\n'));
        }

        // --readonly says so too.
        using (Process watcher = Start(pair, "console", "card0", "--readonly", "--run-dir", pair.RunDir))
        {
            Func<string> err = Collect(watcher);
            Assert.True(Run.WaitUntil(() => err().Contains('\n'), TimeSpan.FromSeconds(15)), "--readonly printed nothing");
            Assert.Equal("vop console: card0 console: read-only (--readonly); what you type is not sent", err().Trim());
            watcher.StandardInput.Close();
            Assert.True(watcher.WaitForExit(10_000));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SshProxyToACardPortNobodyListensOnSaysSoAndExits(bool cardIsDevice)
    {
        // The card's ssh port connects to 127.0.0.1:22 in the card's namespace, where nothing listens.
        // Either role refuses: the card as the console's driver side and as its device side.
        using var pair = new LinkPair(consoleCommand: s_shell, cardIsDevice: cardIsDevice);
        pair.Up();
        string path = Path.Combine(pair.RunDir, "card0", "ssh.sock");
        Assert.True(Run.WaitUntil(() => File.Exists(path), TimeSpan.FromSeconds(10)), "no ssh.sock");
        for (int attempt = 0; attempt < 2; attempt++)
        {
            var clock = Stopwatch.StartNew();
            using Process proxy = Start(pair, "ssh-proxy", "card0", "--run-dir", pair.RunDir);
            Func<string> err = Collect(proxy);
            proxy.StandardInput.Write("SSH-2.0-OpenSSH_test\r\n"); // what ssh sends first; stdin stays open
            proxy.StandardInput.Flush();
            bool exited = proxy.WaitForExit(30_000);
            if (!exited)
            {
                proxy.Kill(true);
            }

            Assert.True(exited, "vop ssh-proxy hung on a card port that cannot connect\n" + pair.Logs());
            Assert.Equal(1, proxy.ExitCode);
            proxy.WaitForExit();
            Assert.Equal("vop ssh-proxy: card0: the card could not connect its ssh port (is sshd running on the card?)", err().Trim());
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
        }

        // Once something listens, the next session opens and carries bytes: the refusals left nothing behind.
        Process sink = Run.Background(pair.CardNs, Path.Combine(pair.Dir, "sink.out"), Run.NetProbe("tcp-sink", "--port", "22"));
        try
        {
            Thread.Sleep(1500);
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(path));
            socket.Send(new byte[4096]);
            if (!cardIsDevice)
            {
                // A second session while this one is open is turned away (after the host's 10 s wait), and
                // ssh-proxy says why instead of blaming the card.
                using Process second = Start(pair, "ssh-proxy", "card0", "--run-dir", pair.RunDir);
                Func<string> err = Collect(second);
                second.StandardInput.Write("SSH-2.0-OpenSSH_test\r\n");
                second.StandardInput.Flush();
                Assert.True(second.WaitForExit(30_000), "the second ssh-proxy hung");
                second.WaitForExit();
                Assert.Equal(1, second.ExitCode);
                Assert.Equal("vop ssh-proxy: card0: the ssh port is busy with another session (one at a time; is another ssh to card0 open?)", err().Trim());
            }

            socket.Shutdown(SocketShutdown.Send);
            var rest = new byte[64];
            while (socket.Receive(rest) > 0)
            {
            }

            Assert.True(sink.WaitForExit(30_000), "the sink did not see the session after the refusals\n" + pair.Logs());
            Assert.Contains("bytes=4096", File.ReadAllText(Path.Combine(pair.Dir, "sink.out")));
        }
        finally
        {
            LinkPair.Kill(sink, 9);
        }
    }

    private static Process Start(LinkPair pair, params string[] args)
    {
        ProcessStartInfo psi = Run.Info(pair.HostNs, Run.Vop(args));
        psi.RedirectStandardInput = true;
        return Process.Start(psi)!;
    }

    /// <summary>Reads the process's stdout away and collects its stderr, which the result returns so far.</summary>
    private static Func<string> Collect(Process p)
    {
        var err = new StringBuilder();
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (err)
                {
                    err.Append(e.Data).Append('\n');
                }
            }
        };
        p.OutputDataReceived += (_, _) => { };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        return () =>
        {
            lock (err)
            {
                return err.ToString();
            }
        };
    }

    private static byte[] Frame(string text)
    {
        byte[] data = Encoding.ASCII.GetBytes(text);
        return [0, (byte)data.Length, (byte)(data.Length >> 8), .. data];
    }

    private static string Drain(Socket s, StringBuilder seen)
    {
        var b = new byte[65536];
        try
        {
            int n;
            while ((n = s.Receive(b)) > 0)
            {
                seen.Append(Encoding.ASCII.GetString(b, 0, n));
            }
        }
        catch (SocketException)
        {
        }

        return seen.ToString();
    }
}
