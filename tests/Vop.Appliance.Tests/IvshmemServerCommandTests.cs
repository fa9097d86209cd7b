using System.Diagnostics;
using System.Net.Sockets;
using Vop.Appliance.Cli;
using Vop.Appliance.Tests.Infrastructure;
using Vop.Links.Ivshmem;
using Vop.Links.Windows;

namespace Vop.Appliance.Tests;

/// <summary>
/// `vop ivshmem-server` as its own process, with the project's ivshmem client (what QEMU's ivshmem-doorbell
/// device does) as peers and raw sockets as misbehaving ones: several peers served at once and ringing each
/// other through the server's eventfds over one sealed memory, a client writing garbage, one leaving
/// mid-handshake and one that never reads do not disturb the others, the peer limit refuses unserved, and
/// SIGTERM ends it with exit 0 and its socket removed.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class IvshmemServerCommandTests : IDisposable
{
    private const int Vectors = 64;
    private readonly string _dir = Path.Combine("/tmp", $"vop-ivs-{Environment.ProcessId}-{Guid.NewGuid():N}"[..32]);
    private Process? _server;

    public IvshmemServerCommandTests() => Directory.CreateDirectory(_dir);

    private string Socket => Path.Combine(_dir, "ivshmem.sock");

    private string Log => File.Exists(Path.Combine(_dir, "server.log")) ? File.ReadAllText(Path.Combine(_dir, "server.log")) : "(no log)";

    [Theory]
    [InlineData("--size", "3M", "--size '3M' must be a power of two from 1M to 1G")]
    [InlineData("--size", "64X", "--size '64X' must be a power of two")]
    [InlineData("--vectors", "65", "--vectors 65 must be 1..64")]
    [InlineData("--max-peers", "0", "--max-peers 0 must be 1..1024")]
    public void BadOptionsAreOneLineAndExitOne(string option, string value, string message)
    {
        (int code, string output, string error) = Run.In(null, Run.Vop("ivshmem-server", "--socket", Socket, option, value));
        Assert.Equal(1, code);
        Assert.Equal(string.Empty, output);
        Assert.StartsWith($"vop ivshmem-server: {message}", error, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Trim());
        Assert.False(File.Exists(Socket));
    }

    [Fact]
    public void SizesAreQemuStyle()
    {
        Assert.Equal(64UL << 20, IvshmemServerCommand.ParseSize("64M"));
        Assert.Equal(1UL << 30, IvshmemServerCommand.ParseSize("1g"));
        Assert.Equal(1UL << 20, IvshmemServerCommand.ParseSize("1024K"));
        Assert.Equal(1UL << 20, IvshmemServerCommand.ParseSize("1048576"));
        Assert.Null(IvshmemServerCommand.ParseSize("2G"));
        Assert.Null(IvshmemServerCommand.ParseSize("512K"));
        Assert.Null(IvshmemServerCommand.ParseSize("-4M"));
        Assert.Null(IvshmemServerCommand.ParseSize("18446744073709551615G"));
    }

    [Fact]
    public void ServesSeveralPeersAndOutlivesHostileClients()
    {
        _server = Run.Background(null, Path.Combine(_dir, "server.log"), Run.Vop("ivshmem-server", "-S", Socket, "-l", "1M", "-n", Vectors.ToString(System.Globalization.CultureInfo.InvariantCulture), "--max-peers", "4"));
        Assert.True(Run.WaitUntil(() => File.Exists(Socket), TimeSpan.FromSeconds(30)), Log);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(2));

        // Garbage: a client that writes instead of listening is dropped (any byte from a client means it left).
        using (Socket garbage = Connect())
        {
            garbage.Send("not the ivshmem protocol"u8);
            Assert.True(DrainsToEof(garbage, TimeSpan.FromSeconds(10)), Log);
        }

        // Gone at once: connects and closes before (or while) the server sends its handshake.
        Connect().Dispose();

        // Never reads: its socket buffer fills with the others' announcements; the server gives up on it
        // (send timeout) instead of stalling, and cuts it off.
        using Socket deaf = Connect();

        using IvshmemClient a = IvshmemClient.Connect(Socket, Vectors, cancel.Token);
        using SharedWindow windowA = SharedWindow.MapFd(a.SharedMemory!, 0, 1UL << 20, "a");
        for (int round = 0; round < 8; round++)
        {
            var clock = Stopwatch.StartNew();
            using IvshmemClient b = IvshmemClient.Connect(Socket, Vectors, cancel.Token);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(IvshmemServer.SendTimeoutSeconds * 3), $"round {round}: handshake took {clock.Elapsed}\n{Log}");
            Assert.NotEqual(a.Id, b.Id);
            Assert.True(Run.WaitUntil(() => a.PeerVectors(b.Id) is not null && b.PeerVectors(a.Id) is not null, TimeSpan.FromSeconds(10)), $"round {round}: peers did not learn each other\n{Log}");

            // One memory for all, sealed against shrinking; doorbells both ways, per vector.
            using SharedWindow windowB = SharedWindow.MapFd(b.SharedMemory!, 0, 1UL << 20, "b");
            windowA.Accessor.WriteU32Release(64, 0xC0FFEE00u + (uint)round);
            Assert.Equal(0xC0FFEE00u + (uint)round, windowB.Accessor.ReadU32Acquire(64));
            int v = 1 + (round * 7 % (Vectors - 1));
            a.PeerVectors(b.Id)![v].Ring();
            Assert.True(b.OwnVectors[v].Wait(5000), $"round {round}: b's vector {v} not rung\n{Log}");
            Assert.False(b.OwnVectors[(v + 1) % Vectors].Wait(0));
            b.PeerVectors(a.Id)![0].Ring();
            Assert.True(a.OwnVectors[0].Wait(5000), Log);
            a.OwnVectors[0].Drain();
            b.Dispose();
            Assert.True(Run.WaitUntil(() => a.PeerVectors(b.Id) is null, TimeSpan.FromSeconds(10)), $"round {round}: a did not see b leave\n{Log}");
        }

        // The deaf client was cut off: what it finally reads ends in EOF.
        Assert.True(DrainsToEof(deaf, TimeSpan.FromSeconds(20)), "the client that never read is still served\n" + Log);

        // The limit: a, then three more fill the four seats; a fifth is closed before it learns anything.
        var more = new List<IvshmemClient>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                more.Add(IvshmemClient.Connect(Socket, Vectors, cancel.Token));
            }

            using (Socket fifth = Connect())
            {
                fifth.ReceiveTimeout = 10_000;
                Assert.Equal(0, fifth.Receive(new byte[64]));
            }

            // The log line is written by the console logger's own thread: give it a moment.
            Assert.True(Run.WaitUntil(() => Log.Contains("refused a client", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), Log);
            Assert.True(Run.WaitUntil(() => more.All(m => m.PeerIds.Count == 3), TimeSpan.FromSeconds(10)), Log);
        }
        finally
        {
            foreach (IvshmemClient m in more)
            {
                m.Dispose();
            }
        }

        Assert.False(_server.HasExited, Log);
        LinkPair.Kill(_server, 15);
        Assert.Equal(0, _server.ExitCode);
        Assert.False(File.Exists(Socket), Log);
        Assert.True(Run.WaitUntil(() => !a.ServerAlive, TimeSpan.FromSeconds(10)), "a did not see the server go");
        Assert.Contains($"peer {a.Id} connected", Log, StringComparison.Ordinal);
        Assert.Contains("stopping:", Log, StringComparison.Ordinal);
    }

    private Socket Connect()
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(Socket));
        return s;
    }

    /// <summary>Reads (and drops, fds included) until EOF; false if the server keeps it open past the timeout.</summary>
    private static bool DrainsToEof(Socket s, TimeSpan timeout)
    {
        s.ReceiveTimeout = 1000;
        var buffer = new byte[65536];
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            try
            {
                if (s.Receive(buffer) == 0)
                {
                    return true;
                }
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut || e.SocketErrorCode == SocketError.WouldBlock)
            {
            }
            catch (SocketException)
            {
                return true; // reset by the server
            }
        }

        return false;
    }

    public void Dispose()
    {
        LinkPair.Kill(_server, 9);
        _server?.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
