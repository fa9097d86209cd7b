using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Vop.Appliance.Tests.Infrastructure;

/// <summary>
/// Traffic between the arm64 card's busybox and the host vop's TAP in a namespace: ping both ways, hashed
/// TCP transfers (busybox nc and sha256sum in the guest, Vop.NetProbe's `tcp-sink`/`tcp-source` beside the TAP),
/// and the card's login console answering on the host's port socket. What <see cref="GuestTraffic"/>
/// does for the x86 guest, for <see cref="Arm64Guest"/>.
/// </summary>
public sealed class GuestTraffic(IGuestShell guest, string ns, string hostIp, string guestIp, Func<string> logs)
{
    public void PingBothWays()
    {
        (int c1, string o1, string e1) = Run.In(ns, "ping", "-c", "5", "-i", "0.2", "-W", "3", guestIp);
        Assert.True(c1 == 0, $"host → guest ping failed: {o1}{e1}\n{logs()}\n{guest.Tail()}");
        (int c2, string o2) = guest.Exec($"ping -c 3 -W 3 {hostIp}", TimeSpan.FromSeconds(30));
        Assert.True(c2 == 0, $"guest → host ping failed: {o2}\n{logs()}");
    }

    /// <summary>The guest sends random bytes to a sink beside the host's TAP; both SHA-256s must match.</summary>
    public void GuestToHost(int mib, int seed)
    {
        string file = $"/tmp/out{seed}";
        (int gc, string made) = guest.Exec($"dd if=/dev/urandom of={file} bs=64k count={mib * 16} 2>/dev/null && sha256sum {file}", TimeSpan.FromSeconds(60));
        Assert.True(gc == 0, made);
        string guestSha = made.Split('\n').Select(l => l.Trim()).First(l => l.EndsWith(file, StringComparison.Ordinal) && l.Length > 64)[..64];
        using Process sink = Process.Start(Run.Info(ns, Run.NetProbe("tcp-sink", "--port", "5311")))!;
        Task<string> sinkOut = sink.StandardOutput.ReadToEndAsync();
        try
        {
            Assert.True(Run.WaitUntil(() => Run.In(ns, "ss", "-ltn", "sport = :5311").Out.Contains("5311", StringComparison.Ordinal), TimeSpan.FromSeconds(20)), "sink did not listen");
            (int nc, string sent) = guest.Exec($"nc {hostIp} 5311 < {file}", TimeSpan.FromSeconds(180));
            Assert.True(nc == 0, sent + logs());
            Assert.True(sink.WaitForExit(30_000), "sink did not finish");
            string so = sinkOut.Result;
            Assert.Equal(((long)mib << 20).ToString(CultureInfo.InvariantCulture), LinkPair.Field(so, "bytes"));
            Assert.Equal(guestSha, LinkPair.Field(so, "sha256"));
        }
        finally
        {
            if (!sink.HasExited)
            {
                sink.Kill();
            }

            guest.Exec($"rm -f {file}", TimeSpan.FromSeconds(20));
        }
    }

    /// <summary>Seeded bytes from beside the host's TAP into busybox nc listening in the guest; the guest's SHA-256 must match.</summary>
    public void HostToGuest(long bytes, int seed)
    {
        guest.Exec("rm -f /tmp/in /tmp/in.done; (nc -l -p 5312 > /tmp/in; touch /tmp/in.done) & sleep 0.5", TimeSpan.FromSeconds(20));
        (int code, string output, string err) = Run.In(ns, TimeSpan.FromSeconds(180), Run.NetProbe("tcp-source", "--connect", $"{guestIp}:5312", "--bytes", bytes.ToString(CultureInfo.InvariantCulture), "--seed", seed.ToString(CultureInfo.InvariantCulture)));
        Assert.True(code == 0, $"tcp source failed: {output}{err}\n{logs()}");
        (int wc, string got) = guest.Exec("while [ ! -e /tmp/in.done ]; do sleep 0.1; done; ls -l /tmp/in; sha256sum /tmp/in; rm -f /tmp/in", TimeSpan.FromSeconds(60));
        Assert.True(wc == 0, got);
        Assert.Contains($" {bytes} ", got, StringComparison.Ordinal);
        Assert.Contains(LinkPair.Field(output, "sha256") + "  /tmp/in", got, StringComparison.Ordinal);
    }

    /// <summary>
    /// The guest's login console (its port running /bin/sh on a PTY) answers a command typed into the host's
    /// port socket (RUNDIR/LINK/console.sock) with the shell's own arithmetic and its machine name.
    /// </summary>
    public void ConsoleAnswers(string consoleSocket, string machine)
    {
        using var console = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        console.Connect(new UnixDomainSocketEndPoint(consoleSocket));
        console.ReceiveTimeout = 1000;
        var seen = new StringBuilder();
        bool answered = Run.WaitUntil(
            () =>
            {
                console.Send("echo guest-console-$((6*7)) $(uname -m)\r"u8);
                var buffer = new byte[4096];
                try
                {
                    int n;
                    while ((n = console.Receive(buffer)) > 0)
                    {
                        seen.Append(Encoding.ASCII.GetString(buffer, 0, n));
                        if (seen.ToString().Contains($"guest-console-42 {machine}", StringComparison.Ordinal))
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
        Assert.True(answered, $"no answer from the guest's console: {seen}\n{logs()}");
    }
}
