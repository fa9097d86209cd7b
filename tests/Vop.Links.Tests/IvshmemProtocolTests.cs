using System.Buffers.Binary;
using Vop.Links.Doorbells;
using Vop.Links.Interop;
using Vop.Links.Ivshmem;
using Vop.Links.Tests.Infrastructure;
using Vop.Links.Windows;

namespace Vop.Links.Tests;

/// <summary>The ivshmem server protocol as QEMU's ivshmem-doorbell device and contrib client speak it.</summary>
public sealed class IvshmemProtocolTests : IDisposable
{
    private const int Vectors = 3;
    private readonly TempPaths _paths = new();
    private readonly SharedWindow _window = SharedWindow.CreateMemfd("ivshmem-test", 1 << 20);
    private readonly IvshmemServer _server;

    public IvshmemProtocolTests()
    {
        _server = new IvshmemServer(_paths.File("ivshmem.sock"), _window.Fd!, Vectors);
        _server.Start();
    }

    public void Dispose()
    {
        _server.Dispose();
        _window.Dispose();
        _paths.Dispose();
    }

    [Fact]
    public void RawHandshakeFollowsTheQemuMessageSequence()
    {
        using SafeFd socket = UnixSocket.TryConnect(_server.SocketPath)!;
        var messages = new List<(long Value, bool HasFd)>();
        var fds = new List<SafeFd>();
        // version, id, shm, 3 vectors of peer 0 (the device side), 3 own vectors.
        Span<byte> buf = stackalloc byte[8];
        for (int i = 0; i < 3 + (2 * Vectors); i++)
        {
            var got = new List<SafeFd>();
            Assert.True(UnixSocket.Receive(socket, buf, got));
            Assert.True(got.Count <= 1, $"message {i} carried {got.Count} fds");
            messages.Add((BinaryPrimitives.ReadInt64LittleEndian(buf), got.Count == 1));
            fds.AddRange(got);
        }

        Assert.Equal((0L, false), messages[0]);
        Assert.Equal((1L, false), messages[1]);  // first client gets id 1; 0 is the server's own peer
        Assert.Equal((-1L, true), messages[2]);
        Assert.All(messages.Skip(3).Take(Vectors), m => Assert.Equal((0L, true), m));
        Assert.All(messages.Skip(3 + Vectors), m => Assert.Equal((1L, true), m));

        // The shm fd maps the very window the server serves.
        _window.Accessor.WriteU64(64, 0x1122334455667788);
        using SharedWindow mapped = SharedWindow.MapFd(fds[0], 0, 1 << 20, "received");
        Assert.Equal(0x1122334455667788UL, mapped.Accessor.ReadU64(64));

        // Vector 2 of peer 0 is the server's local vector 2.
        using var toServer = new EventFdDoorbell(fds[3]);
        toServer.Ring();
        Assert.True(_server.LocalPeer.Vectors[2].Wait(1000));
        Assert.Equal(1UL, _server.LocalPeer.Vectors[2].Drain());
        Assert.False(_server.LocalPeer.Vectors[1].Wait(0));

        // And the server reaches us on our own vector 1.
        using var own1 = new EventFdDoorbell(fds[5]);
        _server.Peers.Single().Vectors[1].Ring();
        Assert.True(own1.Wait(1000));
        foreach (SafeFd fd in fds.Skip(1).Take(2).Concat(fds.Skip(4).Where((_, i) => i != 1)))
        {
            fd.Dispose();
        }
    }

    [Fact]
    public void ClientsLearnOfEachOtherAndOfDepartures()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using IvshmemClient a = IvshmemClient.Connect(_server.SocketPath, Vectors, cts.Token);
        Assert.Equal(1, a.Id);
        Assert.NotNull(a.PeerVectors(0));
        using var joined = new ManualResetEventSlim();
        using var left = new ManualResetEventSlim();
        a.PeerChanged += (id, v) =>
        {
            if (id == 2)
            {
                (v is null ? left : joined).Set();
            }
        };

        IvshmemClient b = IvshmemClient.Connect(_server.SocketPath, Vectors, cts.Token);
        Assert.Equal(2, b.Id);
        Assert.True(joined.Wait(5000));
        Assert.NotNull(b.PeerVectors(1));
        Assert.NotNull(b.PeerVectors(0));

        // a rings b on vector 1 through the fd the server handed out.
        a.PeerVectors(2)![1].Ring();
        Assert.True(b.OwnVectors[1].Wait(1000));

        // The server rings a.
        _server.Peers.Single(p => p.Id == 1).Vectors[2].Ring();
        Assert.True(a.OwnVectors[2].Wait(1000));

        b.SharedMemory!.Dispose();
        b.Dispose();
        Assert.True(left.Wait(5000));
        Assert.Null(a.PeerVectors(2));
        a.SharedMemory!.Dispose();
    }

    [Fact]
    public async Task ClientWaitsForAServerThatStartsLater()
    {
        string path = _paths.File("late.sock");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var connect = Task.Run(() => IvshmemClient.Connect(path, Vectors, cts.Token));
        await Task.Delay(300);
        Assert.False(connect.IsCompleted);
        using SharedWindow w = SharedWindow.CreateMemfd("late", 4096 * 4);
        using var late = new IvshmemServer(path, w.Fd!, Vectors);
        late.Start();
        using IvshmemClient client = await connect;
        Assert.Equal(1, client.Id);
        client.SharedMemory!.Dispose();
    }

    [Fact]
    public void VectorCountMismatchIsAClearError()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        IOException e = Assert.Throws<IOException>(() => IvshmemClient.Connect(_server.SocketPath, Vectors + 2, cts.Token));
        Assert.Contains("vectors", e.Message);
    }
}
