using Microsoft.Extensions.Logging;
using Vop.Links.Doorbells;
using Vop.Links.Interop;
using Vop.Links.Supervision;

namespace Vop.Links.VhostUser;

/// <summary>
/// The vhost-user link kind: vop is the back-end of one device for one front-end (QEMU) at a time. It
/// listens on a UNIX socket (QEMU connects, `-chardev socket,path=…`) or connects to one QEMU serves
/// (`server=on`), reconnecting by itself. One thread reads messages and watches the running device;
/// when the front-end leaves (QEMU killed or restarted) the device stops and the next one is served.
/// </summary>
public sealed class VhostUserLink : ILinkSupervisor
{
    private const int WatchMs = 200;

    // A message is read only once its first byte is there; a front-end that stalls inside one for this
    // long is dropped instead of holding the link thread.
    private const int MessageTimeoutSeconds = 5;
    private readonly string _socketPath;
    private readonly bool _listen;
    private readonly IVhostUserDevice _device;
    private readonly ILogger _log;
    private readonly EventFdDoorbell _stop = new();
    private readonly object _gate = new();
    private SafeFd? _listener;
    private Thread? _thread;
    private VhostUserSession? _session;
    private volatile bool _stopping;
    private long _ringStops;
    private long _quarantines;

    public VhostUserLink(string name, string socketPath, bool listen, IVhostUserDevice device, ILogger log)
    {
        Name = name;
        _socketPath = socketPath;
        _listen = listen;
        _device = device;
        _log = log;
    }

    public string Name { get; }

    public LinkSide Side => LinkSide.Device;

    public string Description => "vhost-user back-end (device side) for one front-end";

    public IVhostUserDevice Device => _device;

    /// <summary>Front-end connections served so far (the first is 1).</summary>
    public long Connections { get; private set; }

    /// <summary>Connections that ended (QEMU quit, was killed, or sent a malformed message).</summary>
    public long Departures { get; private set; }

    public bool Connected => Volatile.Read(ref _session) is not null;

    public bool IsLive => Volatile.Read(ref _session) is { Running: true };

    public ulong Negotiated => Volatile.Read(ref _session)?.Negotiated ?? 0;

    /// <summary>virtio status the front-end last set; 0xF (through DRIVER_OK) when live without SET_STATUS.</summary>
    public uint DeviceStatus
    {
        get
        {
            VhostUserSession? s = Volatile.Read(ref _session);
            return s is null ? 0 : s.Status != 0 ? s.Status : s.Running ? 0xFu : 0u;
        }
    }

    public long RingStops => Interlocked.Read(ref _ringStops) + (Volatile.Read(ref _session)?.RingStops ?? 0);

    public long Quarantines => Interlocked.Read(ref _quarantines) + (Volatile.Read(ref _session)?.Quarantines ?? 0);

    public bool Up => IsLive;

    /// <summary>A front-end has no epoch in the window sense: each connection is a new peer, so its number is.</summary>
    public uint PeerEpoch => (uint)Connections;

    /// <summary>Ring stops, departures and quarantines.</summary>
    public long Resets => RingStops + Departures + Quarantines;

    /// <summary>
    /// The device side's reasons: a ring the front-end stopped (its driver reset the device) is driver_reset,
    /// every end of a front-end connection is link_down whatever ended it, a quarantine is broken.
    /// </summary>
    public IReadOnlyList<KeyValuePair<ResetReason, long>> ResetsByReason =>
    [
        KeyValuePair.Create(ResetReason.DriverReset, RingStops),
        KeyValuePair.Create(ResetReason.LinkDown, Departures),
        KeyValuePair.Create(ResetReason.Broken, Quarantines),
    ];

    /// <summary>One device per vhost-user link.</summary>
    public int DeviceCount => 1;

    public SupervisedDevice DeviceAt(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(index, 0);
        return new SupervisedDevice(_device.Name, _device.Type, IsLive, DeviceStatus, Negotiated, SupervisedDevice.Cells(_device.Stats, _device.QueueCount));
    }

    public void Start()
    {
        if (_listen)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(_socketPath))!);
            _listener = UnixSocket.Listen(_socketPath);
            File.SetUnixFileMode(_socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        _thread = new Thread(Run) { Name = $"vop-vhost-{Name}", IsBackground = true };
        _thread.Start();
    }

    private void Run()
    {
        // Exception boundary: a fault ends at most the front-end's connection, never the process.
        while (!_stopping)
        {
            try
            {
                RunOnce();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                LinkLog.ThreadFault(_log, $"vhost-user {_socketPath}", Faults.Describe(e));
                _stop.Wait(250);
            }
        }
    }

    private void RunOnce()
    {
        {
            SafeFd? socket = _listen ? AcceptOne() : ConnectOne();
            VhostUserSession? session = null;
            string reason;
            try
            {
                if (socket is null)
                {
                    return;
                }

                Connections++;
                VhostUserLog.Connected(_log, _socketPath);
                UnixSocket.SetReceiveTimeout(socket, MessageTimeoutSeconds);
                session = new VhostUserSession(socket, _device, _log);
                socket = null; // the session owns it
                Volatile.Write(ref _session, session);
                reason = Serve(session);
            }
            finally
            {
                if (session is not null)
                {
                    lock (_gate)
                    {
                        Volatile.Write(ref _session, null);
                        Interlocked.Add(ref _ringStops, session.RingStops);
                        Interlocked.Add(ref _quarantines, session.Quarantines);
                    }
                }

                session?.Dispose();
                socket?.Dispose();
            }

            Departures++;
            VhostUserLog.Disconnected(_log, reason);
        }
    }

    /// <summary>Serves one connection until it ends; returns why.</summary>
    private string Serve(VhostUserSession session)
    {
        using var epoll = new Epoll(4);
        epoll.Add(session.Socket.Fd);
        epoll.Add(_stop.Fd);
        if (_listener is not null)
        {
            epoll.Add(_listener.Fd);
        }

        while (!_stopping)
        {
            int ready = epoll.Wait(WatchMs);
            session.CheckFault();
            for (int i = 0; i < ready; i++)
            {
                int fd = epoll.ReadyFd(i);
                if (fd == session.Socket.Fd)
                {
                    try
                    {
                        if (!session.ServeOne())
                        {
                            return "socket closed";
                        }
                    }
                    catch (Exception e) when (e is IOException or EndOfStreamException)
                    {
                        return e.Message;
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        // A message we did not foresee: drop this front-end's connection, keep the link.
                        LinkLog.ThreadFault(_log, $"vhost-user {_socketPath}", Faults.Describe(e));
                        return "contained fault";
                    }
                }
                else if (_listener is not null && fd == _listener.Fd)
                {
                    using SafeFd? extra = UnixSocket.Accept(_listener);
                    if (extra is not null)
                    {
                        VhostUserLog.Busy(_log, _socketPath);
                    }
                }
            }
        }

        return "vop stopping";
    }

    private SafeFd? AcceptOne()
    {
        using var epoll = new Epoll(2);
        epoll.Add(_listener!.Fd);
        epoll.Add(_stop.Fd);
        return epoll.Wait(-1) > 0 && !_stopping ? UnixSocket.Accept(_listener) : null;
    }

    private SafeFd? ConnectOne()
    {
        SafeFd? fd = UnixSocket.TryConnect(_socketPath);
        if (fd is null)
        {
            _stop.Wait(250); // QEMU not (yet) serving: retry
        }

        return fd;
    }

    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        _stop.Ring();
        lock (_gate)
        {
            // Unblocks a read inside a message (a stalled front-end) so the thread sees the stop.
            Volatile.Read(ref _session)?.Shutdown();
        }

        _thread?.Join();
        lock (_gate)
        {
            _session?.Dispose();
            _session = null;
        }

        _listener?.Dispose();
        if (_listen && File.Exists(_socketPath))
        {
            File.Delete(_socketPath);
        }

        _stop.Dispose();
    }
}
