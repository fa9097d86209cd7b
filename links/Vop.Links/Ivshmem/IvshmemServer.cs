using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Tmds.Linux;
using Vop.Links.Doorbells;
using Vop.Links.Interop;

namespace Vop.Links.Ivshmem;

/// <summary>
/// An ivshmem-compatible server (what QEMU's contrib/ivshmem-server does) that also takes part as a
/// local peer with id 0: it hands the window's fd and per-peer eventfds to every client, vop driver
/// sides and QEMU ivshmem-doorbell devices alike. One thread accepts clients and watches their sockets;
/// any byte or EOF from a client means it left. With <c>maxPeers</c> (1 for a vop link: one driver side)
/// a client beyond it is closed at once, before it learns anything: it gets no fd, no doorbell of the
/// admitted peer, and its coming and going touches nothing.
/// Without a local peer (<c>localPeer: false</c>, the `vop ivshmem-server` verb) it is QEMU's server
/// exactly: no data path of its own, ids from 0, every client learns only the other clients.
/// A client that stops reading its socket cannot stall the others: every send gives up after
/// <see cref="SendTimeoutSeconds"/> and that client is dropped.
/// </summary>
public sealed unsafe class IvshmemServer : IDisposable
{
    private readonly string _path;
    private readonly SafeFd _shm;
    private readonly ILogger _log;
    private readonly Dictionary<ushort, IvshmemPeer> _peers = [];
    private readonly object _gate = new();
    private readonly EventFdDoorbell _stop = new();
    private SafeFd? _listener;
    private Thread? _thread;
    private readonly int _maxPeers;
    private readonly IvshmemPeer? _local;
    private ushort _nextId;
    private long _refused;

    /// <summary>Seconds a send to one client may block (its socket buffer full) before that client is dropped.</summary>
    public const int SendTimeoutSeconds = 2;

    public IvshmemServer(string socketPath, SafeFd shmFd, int vectors, ILogger? log = null, int maxPeers = int.MaxValue, bool localPeer = true)
    {
        if (maxPeers < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(maxPeers), "maxPeers must be at least 1");
        }

        _maxPeers = maxPeers;
        if (vectors is < 1 or > IvshmemProtocol.MaxVectors)
        {
            throw new ArgumentOutOfRangeException(nameof(vectors), $"vectors must be 1..{IvshmemProtocol.MaxVectors}");
        }

        _path = socketPath;
        _shm = shmFd;
        _log = log ?? NullLogger.Instance;
        VectorCount = vectors;
        if (!localPeer)
        {
            return;
        }

        var local = new EventFdDoorbell[vectors];
        for (int v = 0; v < vectors; v++)
        {
            local[v] = new EventFdDoorbell();
        }

        _local = new IvshmemPeer(0, null, local);
        _nextId = 1;
    }

    public int VectorCount { get; }

    /// <summary>The server's own peer (id 0): clients ring these eventfds to reach the device side.</summary>
    public IvshmemPeer LocalPeer => _local ?? throw new InvalidOperationException("this ivshmem server has no local peer");

    public string SocketPath => _path;

    /// <summary>Clients closed unserved because <c>maxPeers</c> were already connected.</summary>
    public long RefusedPeers => Interlocked.Read(ref _refused);

    /// <summary>Raised on the server thread after a client was refused (closed unserved).</summary>
    public event Action? PeerRefused;

    /// <summary>Raised on the server thread after a client got its fds.</summary>
    public event Action<IvshmemPeer>? PeerConnected;

    /// <summary>Raised on the server thread after a client left, before its eventfds are closed.</summary>
    public event Action<IvshmemPeer>? PeerDisconnected;

    /// <summary>Connected remote peers, newest last.</summary>
    public IReadOnlyList<IvshmemPeer> Peers
    {
        get
        {
            lock (_gate)
            {
                return [.. _peers.Values.OrderBy(p => p.Id)];
            }
        }
    }

    public void Start()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(_path))!);
        _listener = UnixSocket.Listen(_path);
        File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _thread = new Thread(Run) { Name = "ivshmem-server", IsBackground = true };
        _thread.Start();
    }

    private void Run()
    {
        // Exception boundary: whatever a client does, the server keeps serving the link.
        while (true)
        {
            try
            {
                Serve();
                return;
            }
            catch (Exception e)
            {
                LinkLog.ThreadFault(_log, $"ivshmem server {_path}", Faults.Describe(e));
                if (_stop.Wait(100))
                {
                    return;
                }
            }
        }
    }

    private void Serve()
    {
        var pfds = new pollfd[IvshmemProtocol.MaxVectors + 2];
        var order = new List<IvshmemPeer>();
        while (true)
        {
            order.Clear();
            lock (_gate)
            {
                order.AddRange(_peers.Values);
            }

            int n = 0;
            pfds[n++] = new pollfd { fd = _stop.Fd, events = LibC.POLLIN };
            pfds[n++] = new pollfd { fd = _listener!.Fd, events = LibC.POLLIN };
            if (pfds.Length < order.Count + 2)
            {
                pfds = new pollfd[order.Count + 2];
                pfds[0] = new pollfd { fd = _stop.Fd, events = LibC.POLLIN };
                pfds[1] = new pollfd { fd = _listener.Fd, events = LibC.POLLIN };
            }

            foreach (IvshmemPeer p in order)
            {
                pfds[n++] = new pollfd { fd = p.Socket!.Fd, events = LibC.POLLIN };
            }

            int r;
            fixed (pollfd* pp = pfds)
            {
                r = LibC.poll(pp, (ulong_t)(ulong)n, -1);
            }

            if (r < 0)
            {
                if (Errno.Last == LibC.EINTR)
                {
                    continue;
                }

                LinkLog.ServerPollFailed(_log, _path, Errno.Describe(Errno.Last));
                return;
            }

            if (pfds[0].revents != 0)
            {
                return;
            }

            for (int i = 2; i < n; i++)
            {
                if (pfds[i].revents != 0)
                {
                    Disconnect(order[i - 2]);
                }
            }

            if ((pfds[1].revents & LibC.POLLIN) != 0)
            {
                SafeFd? client = UnixSocket.Accept(_listener);
                try
                {
                    if (client is not null && Full())
                    {
                        Interlocked.Increment(ref _refused);
                        LinkLog.ClientRefused(_log, _path, UnixSocket.PeerPid(client), _maxPeers);
                        client.Dispose();
                        PeerRefused?.Invoke();
                    }
                    else if (client is not null)
                    {
                        try
                        {
                            Admit(client);
                            client = null; // its IvshmemPeer owns it now
                        }
                        catch (IOException e)
                        {
                            LinkLog.ClientSetupFailed(_log, _path, e.Message);
                        }
                    }
                }
                finally
                {
                    client?.Dispose();
                }
            }
        }
    }

    private bool Full()
    {
        lock (_gate)
        {
            return _peers.Count >= _maxPeers;
        }
    }

    private void Admit(SafeFd client)
    {
        ushort id;
        lock (_gate)
        {
            if (_peers.Count >= ushort.MaxValue - 1)
            {
                throw new IOException("no free peer ids");
            }

            // Like QEMU's server: ids increment and skip ones in use (never 0 when that is the local peer).
            id = _nextId;
            while ((id == 0 && _local is not null) || _peers.ContainsKey(id))
            {
                id++;
            }

            _nextId = (ushort)(id + 1);
        }

        var vectors = new EventFdDoorbell[VectorCount];
        for (int v = 0; v < VectorCount; v++)
        {
            vectors[v] = new EventFdDoorbell();
        }

        var peer = new IvshmemPeer(id, client, vectors);
        List<IvshmemPeer> others = [];
        bool announced = false;
        try
        {
            UnixSocket.SetSendTimeout(client, SendTimeoutSeconds);
            IvshmemProtocol.Send(client, IvshmemProtocol.Version);
            IvshmemProtocol.Send(client, id);
            IvshmemProtocol.Send(client, IvshmemProtocol.ShmMarker, _shm.Fd);

            lock (_gate)
            {
                others = [.. _peers.Values];
            }

            // Existing peers learn the newcomer's vectors before it learns theirs (as QEMU's server does).
            announced = true;
            foreach (IvshmemPeer other in others)
            {
                foreach (EventFdDoorbell v in vectors)
                {
                    TrySend(other, id, v.Fd);
                }
            }

            foreach (IvshmemPeer other in _local is null ? others : others.Prepend(_local))
            {
                foreach (EventFdDoorbell v in other.Vectors)
                {
                    IvshmemProtocol.Send(client, other.Id, v.Fd);
                }
            }

            foreach (EventFdDoorbell v in vectors)
            {
                IvshmemProtocol.Send(client, id, v.Fd);
            }
        }
        catch
        {
            // The others were told of a peer that never made it: tell them it left, as QEMU's clients expect.
            if (announced)
            {
                foreach (IvshmemPeer other in others)
                {
                    TrySend(other, id);
                }
            }

            peer.Dispose();
            throw;
        }

        lock (_gate)
        {
            _peers[id] = peer;
        }

        LinkLog.PeerConnected(_log, _path, id);
        PeerConnected?.Invoke(peer);
    }

    private void TrySend(IvshmemPeer to, long value, int fd = -1)
    {
        try
        {
            IvshmemProtocol.Send(to.Socket!, value, fd);
        }
        catch (IOException)
        {
            // That peer is going away, or stopped reading (send timeout): either way it can no longer follow
            // the peer set, so it is cut off; its socket reports EOF/HUP on the next poll and it is dropped.
            UnixSocket.Shutdown(to.Socket!);
        }
    }

    private void Disconnect(IvshmemPeer peer)
    {
        lock (_gate)
        {
            if (!_peers.Remove(peer.Id))
            {
                return;
            }
        }

        LinkLog.PeerDisconnected(_log, _path, peer.Id);
        List<IvshmemPeer> others;
        lock (_gate)
        {
            others = [.. _peers.Values];
        }

        foreach (IvshmemPeer other in others)
        {
            TrySend(other, peer.Id);
        }

        PeerDisconnected?.Invoke(peer);
        peer.Dispose();
    }

    public void Dispose()
    {
        _stop.Ring();
        _thread?.Join();
        _listener?.Dispose();
        try
        {
            File.Delete(_path);
        }
        catch (IOException)
        {
        }

        lock (_gate)
        {
            foreach (IvshmemPeer p in _peers.Values)
            {
                p.Dispose();
            }

            _peers.Clear();
        }

        _local?.Dispose();
        _stop.Dispose();
    }
}
