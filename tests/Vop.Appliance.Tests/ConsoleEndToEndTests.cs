using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>virtio-console between two daemons: SSH into the card over the ssh port, a shell on the console port.</summary>
[Collection(EndToEnd.Name)]
public sealed class ConsoleEndToEndTests
{
    private static readonly string[] s_shell = ["/bin/sh", "-i"];

    private static (int Code, string Out, string Err) Ssh(LinkPair pair, SshServer sshd, params string[] args) =>
        Run.In(pair.HostNs, TimeSpan.FromSeconds(120), ["ssh", "-F", sshd.ClientConfig, .. args]);

    [Fact]
    public void SshThroughTheConsoleRunsCommandsAndCopiesFilesBothWays()
    {
        using var pair = new LinkPair(consoleCommand: s_shell);
        pair.Up();
        using var sshd = new SshServer(pair.CardNs, pair.Dir, pair.RunDir);

        (int code, string output, string err) = Ssh(pair, sshd, "card0", "echo", "hello-from-$(hostname)-card");
        Assert.True(code == 0, $"ssh failed: {output}{err}\n{sshd.Log}\n{pair.Logs()}");
        Assert.Contains("hello-from-", output);

        string up = Path.Combine(pair.Dir, "up.bin");
        File.WriteAllBytes(up, RandomNumberGenerator.GetBytes(32 << 20));
        (code, output, err) = Run.In(pair.HostNs, TimeSpan.FromSeconds(180), "scp", "-q", "-F", sshd.ClientConfig, up, "card0:" + Path.Combine(pair.Dir, "on-card.bin"));
        Assert.True(code == 0, output + err + pair.Logs());
        Assert.Equal(Sha(up), Sha(Path.Combine(pair.Dir, "on-card.bin")));

        string down = Path.Combine(pair.Dir, "down.bin");
        (code, output, err) = Run.In(pair.HostNs, TimeSpan.FromSeconds(180), "scp", "-q", "-F", sshd.ClientConfig, "card0:" + Path.Combine(pair.Dir, "on-card.bin"), down);
        Assert.True(code == 0, output + err + pair.Logs());
        Assert.Equal(Sha(up), Sha(down));

        // The card side dies and comes back: ssh works again, the host socket path never changed.
        LinkPair.Kill(pair.Driver, 9);
        pair.StartDriver();
        pair.WaitCarrier(true);
        Assert.True(Run.WaitUntil(() => Ssh(pair, sshd, "card0", "true").Code == 0, TimeSpan.FromSeconds(60)), "ssh did not come back after the card restarted\n" + pair.Logs());
        (code, output, _) = Ssh(pair, sshd, "card0", "echo", "again");
        Assert.Equal(0, code);
        Assert.Contains("again", output);
    }

    [Fact]
    public void EveryByteValueCrossesTheSshPortUnchanged()
    {
        using var pair = new LinkPair(consoleCommand: s_shell);
        pair.Up();
        // A sink on the card where sshd would be: it hashes what the port delivers.
        System.Diagnostics.Process sink = Run.Background(pair.CardNs, Path.Combine(pair.Dir, "sink.out"), Run.NetProbe("tcp-sink", "--port", "22"));
        try
        {
            Thread.Sleep(1500);
            var data = new byte[256 * 4096];
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = (byte)(i + (i / 256));
            }

            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(Path.Combine(pair.RunDir, "card0", "ssh.sock")));
            socket.Send(data);
            socket.Shutdown(SocketShutdown.Send);
            var rest = new byte[64];
            while (socket.Receive(rest) > 0)
            {
            }

            Assert.True(sink.WaitForExit(30_000), "sink did not see the end of the stream");
            string report = File.ReadAllText(Path.Combine(pair.Dir, "sink.out"));
            Assert.Contains($"bytes={data.Length}", report);
            Assert.Contains("sha256=" + Convert.ToHexStringLower(SHA256.HashData(data)), report);
        }
        finally
        {
            LinkPair.Kill(sink, 9);
        }
    }

    [Fact]
    public void BurstWithNobodyAttachedNeitherBlocksTheCardNorOverflowsTheScrollback()
    {
        string script = "head -c 1048576 /dev/zero | tr '\\0' 'x'; echo; echo burst-done-$((6*7)); exec sleep 1000";
        using var pair = new LinkPair(consoleCommand: ["/bin/sh", "-c", script]);
        pair.Up();
        Thread.Sleep(3000);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(Path.Combine(pair.RunDir, "card0", "console.sock")));
        socket.ReceiveTimeout = 2000;
        var got = new MemoryStream();
        var buffer = new byte[65536];
        try
        {
            int n;
            while ((n = socket.Receive(buffer)) > 0)
            {
                got.Write(buffer, 0, n);
            }
        }
        catch (SocketException)
        {
        }

        string text = Encoding.ASCII.GetString(got.ToArray());
        Assert.Contains("burst-done-42", text);          // the card wrote all of it: it was never blocked
        Assert.True(got.Length <= 64 * 1024, $"scrollback replay was {got.Length} bytes");
        Assert.True(got.Length > 32 * 1024, $"scrollback replay was only {got.Length} bytes");
    }

    [Fact]
    public void ConsoleInATerminalReachesAShellFollowsResizeAndDetaches()
    {
        using var pair = new LinkPair(consoleCommand: s_shell);
        pair.Up();
        string session = pair.Id + "tm";
        string[] tmux = ["tmux", "-L", session]; // a private tmux server, never the user's
        string cmd = string.Join(' ', Run.Vop("console", "card0", "--run-dir", pair.RunDir));
        Run.Must(Run.In(pair.HostNs, [.. tmux, "new-session", "-d", "-s", session, "-x", "100", "-y", "30", cmd]), "tmux");
        try
        {
            string Screen() => Run.In(pair.HostNs, [.. tmux, "capture-pane", "-p", "-t", session]).Out;
            void Keys(params string[] keys) => Run.Must(Run.In(pair.HostNs, [.. tmux, "send-keys", "-t", session, .. keys]), "send-keys");

            Assert.True(Run.WaitUntil(() => Screen().Contains("Escape character is ^]", StringComparison.Ordinal), TimeSpan.FromSeconds(20)), Screen());
            Keys("echo marker-$((40+2))", "Enter");
            Assert.True(Run.WaitUntil(() => Screen().Contains("marker-42", StringComparison.Ordinal), TimeSpan.FromSeconds(20)), Screen() + pair.Logs());

            Run.Must(Run.In(pair.HostNs, [.. tmux, "resize-window", "-t", session, "-x", "91", "-y", "27"]), "resize");
            Thread.Sleep(1000);
            Keys("stty size", "Enter");
            Assert.True(Run.WaitUntil(() => Screen().Contains("27 91", StringComparison.Ordinal), TimeSpan.FromSeconds(20)), Screen());

            Keys("C-]");
            Assert.True(Run.WaitUntil(() => Run.In(pair.HostNs, [.. tmux, "has-session", "-t", session]).Code != 0, TimeSpan.FromSeconds(10)), "vop console did not leave on Ctrl-]: " + Screen());
        }
        finally
        {
            Run.In(pair.HostNs, [.. tmux, "kill-server"]);
        }
    }

    [Fact]
    public void ConsolePtySymlinkWorksForTerminalPrograms()
    {
        using var pair = new LinkPair(consoleCommand: s_shell);
        pair.Up();
        string pty = Path.Combine(pair.RunDir, "card0", "console.pty");
        Assert.True(Run.WaitUntil(() => File.Exists(pty), TimeSpan.FromSeconds(10)), "no console.pty symlink");
        Assert.StartsWith("/dev/pts/", new FileInfo(pty).LinkTarget);
        // What a terminal program does: open the tty, type a command, read the answer.
        (int code, string output, string err) = Run.In(null, TimeSpan.FromSeconds(30), "sh", "-c",
            $"exec 3<>'{pty}'; sleep 0.5; printf 'echo pty-$((2+3))\r' >&3; timeout 3 cat <&3; true");
        Assert.True(code == 0, err);
        Assert.Contains("pty-5", output);
    }

    [Fact]
    public void OneWriterWatchersAndForceTakeover()
    {
        using var pair = new LinkPair(consoleCommand: s_shell);
        pair.Up();
        string path = Path.Combine(pair.RunDir, "card0", "console.sock");
        using Socket first = Connect(path);
        using Socket watcher = Connect(path, "readonly");
        Thread.Sleep(300);
        watcher.Send(Frame("echo from-watcher-$((1+1))\r"));
        first.Send(Encoding.ASCII.GetBytes("echo from-writer-$((2+2))\r"));
        Assert.True(Run.WaitUntil(() => Drain(watcher).Contains("from-writer-4", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), "the watcher does not see the writer's session");
        Thread.Sleep(500);
        Assert.DoesNotContain("from-watcher-2", Encoding.ASCII.GetString(Scroll(path)));

        using Socket taker = Connect(path, "force");
        Thread.Sleep(300);
        Assert.True(Run.WaitUntil(() => Drain(first).Contains("another client took over", StringComparison.Ordinal), TimeSpan.FromSeconds(10)));
        taker.Send(Frame("echo from-taker-$((3+3))\r"));
        first.Send(Encoding.ASCII.GetBytes("echo from-ousted-$((4+4))\r"));
        Assert.True(Run.WaitUntil(() => Drain(taker).Contains("from-taker-6", StringComparison.Ordinal), TimeSpan.FromSeconds(10)));
        Thread.Sleep(500);
        Assert.DoesNotContain("from-ousted-8", Encoding.ASCII.GetString(Scroll(path)));
    }

    private static Socket Connect(string path, string? mode = null)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 200 };
        s.Connect(new UnixDomainSocketEndPoint(path));
        if (mode is not null)
        {
            s.Send(Encoding.ASCII.GetBytes($"\0vop1 {mode}\n"));
        }

        return s;
    }

    private static byte[] Frame(string text)
    {
        byte[] data = Encoding.ASCII.GetBytes(text);
        return [0, (byte)data.Length, (byte)(data.Length >> 8), .. data];
    }

    private static readonly Dictionary<Socket, StringBuilder> s_seen = [];

    /// <summary>Everything this client received so far (accumulated across calls).</summary>
    private static string Drain(Socket s)
    {
        if (!s_seen.TryGetValue(s, out StringBuilder? sb))
        {
            s_seen[s] = sb = new StringBuilder();
        }

        var b = new byte[65536];
        try
        {
            int n;
            while ((n = s.Receive(b)) > 0)
            {
                sb.Append(Encoding.ASCII.GetString(b, 0, n));
            }
        }
        catch (SocketException)
        {
        }

        return sb.ToString();
    }

    private static byte[] Scroll(string path)
    {
        using Socket s = Connect(path, "readonly");
        Thread.Sleep(300);
        return Encoding.ASCII.GetBytes(Drain(s));
    }

    private static string Sha(string file)
    {
        using FileStream f = File.OpenRead(file);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }
}
