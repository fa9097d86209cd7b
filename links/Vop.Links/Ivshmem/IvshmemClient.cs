using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Vop.Links.Doorbells;
using Vop.Links.Interop;

namespace Vop.Links.Ivshmem;

/// <summary>
/// A client of the ivshmem server protocol (what QEMU's ivshmem-doorbell device and contrib
/// ivshmem-client do): receives its id, the shm fd and the eventfds of every peer, then follows
/// connect/disconnect notifications on a background thread.
/// </summary>
public sealed class IvshmemClient : IDisposable
{
    private readonly SafeFd _socket;
    private readonly string _path;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<ushort, EventFdDoorbell[]> _peers = new();
    private readonly Dictionary<ushort, List<EventFdDoorbell>> _pending = [];
    private Thread? _thread;
    private volatile bool _disposed;

    private IvshmemClient(SafeFd socket, string path, ILogger log)
    {
        _socket = socket;
        _path = path;
        _log = log;
    }

    public ushort Id { get; private set; }

    /// <summary>The shared memory fd; the caller takes it (maps it into a window) and owns it afterwards.</summary>
    public SafeFd? SharedMemory { get; private set; }

    /// <summary>Our own vectors: wait on these to receive interrupts.</summary>
    public EventFdDoorbell[] OwnVectors { get; private set; } = [];

    public int VectorCount => OwnVectors.Length;

    /// <summary>True until the server closes the connection.</summary>
    public bool ServerAlive { get; private set; } = true;

    /// <summary>Raised on the client thread when a peer's vectors are complete or when it leaves (null vectors).</summary>
    public event Action<ushort, EventFdDoorbell[]?>? PeerChanged;

    /// <summary>Raised on the client thread when the server closes the connection.</summary>
    public event Action? ServerLost;

    /// <summary>The vectors of peer <paramref name="id"/>, or null when it is not (yet) connected.</summary>
    public EventFdDoorbell[]? PeerVectors(ushort id) => _peers.TryGetValue(id, out EventFdDoorbell[]? v) ? v : null;

    public IReadOnlyCollection<ushort> PeerIds => [.. _peers.Keys];

    /// <summary>
    /// Connects to the server at <paramref name="path"/>, retrying every 100 ms until it listens (either
    /// side may start first), then runs the handshake expecting <paramref name="vectors"/> vectors.
    /// </summary>
    public static IvshmemClient Connect(string path, int vectors, CancellationToken cancel, ILogger? log = null)
    {
        SafeFd? socket;
        while ((socket = UnixSocket.TryConnect(path)) is null)
        {
            cancel.ThrowIfCancellationRequested();
            cancel.WaitHandle.WaitOne(100);
        }

        var client = new IvshmemClient(socket, path, log ?? NullLogger.Instance);
        try
        {
            client.Handshake(vectors, cancel);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    private void Handshake(int vectors, CancellationToken cancel)
    {
        long version = Next(out SafeFd? fd, cancel);
        fd?.Dispose();
        if (version != IvshmemProtocol.Version)
        {
            throw new IOException($"ivshmem server {_path} speaks protocol {version}, expected {IvshmemProtocol.Version}");
        }

        long id = Next(out fd, cancel);
        fd?.Dispose();
        if (id is < 0 or > ushort.MaxValue)
        {
            throw new IOException($"ivshmem server {_path} gave an invalid peer id {id}");
        }

        Id = (ushort)id;
        long marker = Next(out fd, cancel);
        if (marker != IvshmemProtocol.ShmMarker || fd is null)
        {
            fd?.Dispose();
            throw new IOException($"ivshmem server {_path} did not send the shared memory fd");
        }

        SharedMemory = fd;
        var own = new List<EventFdDoorbell>(vectors);
        while (own.Count < vectors)
        {
            long peer = Next(out fd, cancel);
            if (peer == Id && fd is not null)
            {
                own.Add(new EventFdDoorbell(fd));
            }
            else
            {
                Apply(peer, fd, vectors);
            }
        }

        OwnVectors = [.. own];
        CompletePending();
        _thread = new Thread(() => Follow(vectors)) { Name = $"ivshmem-client-{Id}", IsBackground = true };
        _thread.Start();
    }

    private long Next(out SafeFd? fd, CancellationToken cancel)
    {
        long deadline = Environment.TickCount64 + 5000;
        while (!UnixSocket.WaitReadable(_socket, 100))
        {
            cancel.ThrowIfCancellationRequested();
            if (Environment.TickCount64 > deadline)
            {
                throw new IOException($"ivshmem server {_path} stopped sending during the handshake (does it offer as many vectors as we expect?)");
            }
        }

        if (!IvshmemProtocol.Receive(_socket, out long value, out fd))
        {
            throw new IOException($"ivshmem server {_path} closed the connection during the handshake");
        }

        return value;
    }

    private void Apply(long peer, SafeFd? fd, int vectors)
    {
        if (peer is < 0 or > ushort.MaxValue)
        {
            fd?.Dispose();
            return;
        }

        ushort id = (ushort)peer;
        if (fd is null)
        {
            // A peer left.
            if (_peers.TryRemove(id, out EventFdDoorbell[]? gone))
            {
                PeerChanged?.Invoke(id, null);
                foreach (EventFdDoorbell v in gone)
                {
                    v.Dispose();
                }
            }

            _pending.Remove(id);
            return;
        }

        if (!_pending.TryGetValue(id, out List<EventFdDoorbell>? list))
        {
            list = [];
            _pending[id] = list;
        }

        if (list.Count >= vectors)
        {
            fd.Dispose(); // more vectors than we use: close the extra ones, as QEMU's client does
            return;
        }

        list.Add(new EventFdDoorbell(fd));
        if (list.Count == vectors && OwnVectors.Length > 0)
        {
            Publish(id, list);
        }
    }

    private void CompletePending()
    {
        foreach ((ushort id, List<EventFdDoorbell> list) in _pending.ToArray())
        {
            if (list.Count == OwnVectors.Length)
            {
                Publish(id, list);
            }
        }
    }

    private void Publish(ushort id, List<EventFdDoorbell> list)
    {
        _pending.Remove(id);
        if (_peers.TryRemove(id, out EventFdDoorbell[]? old))
        {
            foreach (EventFdDoorbell v in old)
            {
                v.Dispose();
            }
        }

        _peers[id] = [.. list];
        PeerChanged?.Invoke(id, _peers[id]);
    }

    private void Follow(int vectors)
    {
        try
        {
            while (!_disposed)
            {
                if (!UnixSocket.WaitReadable(_socket, 200))
                {
                    continue;
                }

                if (_disposed || !IvshmemProtocol.Receive(_socket, out long value, out SafeFd? fd))
                {
                    break;
                }

                Apply(value, fd, vectors);
            }
        }
        catch (IOException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Exception boundary: a server that sends garbage costs the connection, not the process.
            LinkLog.ThreadFault(_log, $"ivshmem client {_path}", Faults.Describe(e));
        }

        if (!_disposed)
        {
            ServerAlive = false;
            LinkLog.ServerGone(_log, _path);
            ServerLost?.Invoke();
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _thread?.Join();
        _socket.Dispose();
        foreach (EventFdDoorbell[] vs in _peers.Values)
        {
            foreach (EventFdDoorbell v in vs)
            {
                v.Dispose();
            }
        }

        foreach (List<EventFdDoorbell> vs in _pending.Values)
        {
            foreach (EventFdDoorbell v in vs)
            {
                v.Dispose();
            }
        }

        foreach (EventFdDoorbell v in OwnVectors)
        {
            v.Dispose();
        }
    }
}
