using Vop.Links.Doorbells;
using Vop.Links.Transport;
using Vop.Links.Windows;

namespace Vop.Links.Pci;

/// <summary>
/// One end of a pci/ntb link whose window is a mapped BAR, the memory behind an endpoint BAR, or any file
/// both ends map, with notifications by polling: ringing the peer increments a counter in the window;
/// a poller thread watches the peer's counters and turns changes into local eventfd wake-ups, so the
/// pumps are the same as on every other link. The poller spins briefly after activity, then backs off
/// to sleeping up to 2 ms: idle costs next to nothing, a notification is seen within ~2 ms at worst.
/// The peer is attached while its state block says Running and its heartbeat moves.
/// Inside a VM on QEMU's ivshmem-doorbell device (<see cref="VfioDevice"/> given) notifications are real:
/// ringing writes the BAR0 Doorbell register for the peer's ivshmem id and the peer's doorbells arrive as
/// MSI-X interrupts on eventfds; the poller then only watches the peer's heartbeat and keeps our own
/// ivshmem id (IVPosition) published in our state block, so that a peer which is another guest knows whom
/// to ring. A peer that publishes no id is peer 0: the host's ivshmem server, a loopback link's device side.
/// Across an NTB with its register block given (<see cref="NtbNotifier"/>), ringing sets a bit of the NTB's
/// peer doorbell register, the poller polls the own doorbell status register instead of the counters, and
/// the peer is attached only while its scratchpads match too.
/// </summary>
public sealed class PciLinkEnd : ILinkEnd
{
    private const int MaxSleepMs = 2;

    private readonly bool _deviceSide;
    private readonly Doorbell[] _toPeer;
    private readonly EventFdDoorbell[] _local;
    private readonly VfioDevice? _ivshmem;
    private readonly uint _published;
    private readonly NtbNotifier? _ntb;
    private readonly Thread _poller;
    private volatile bool _disposed;
    private volatile bool _attached;

    public PciLinkEnd(SharedWindow window, bool deviceSide, int vectors, VfioDevice? ivshmem = null, NtbNotifier? ntb = null)
    {
        if (vectors is < 2 or > WindowLayout.DoorbellCounters)
        {
            throw new ArgumentOutOfRangeException(nameof(vectors), $"vectors must be 2..{WindowLayout.DoorbellCounters}");
        }

        Window = window;
        _deviceSide = deviceSide;
        WindowAccessor w = window.Accessor;
        ulong mine = deviceSide ? WindowLayout.DeviceDoorbells : WindowLayout.DriverDoorbells;
        _toPeer = new Doorbell[vectors];
        _local = new EventFdDoorbell[vectors];
        _ivshmem = ivshmem;
        _ntb = ntb;
        IReadOnlyList<EventFdDoorbell>? interrupts = null;
        ulong bar0 = 0;
        ulong peerState = deviceSide ? WindowLayout.DriverSideState : WindowLayout.DeviceSideState;
        if (ivshmem is not null)
        {
            bar0 = ivshmem.Region(0).Offset;
            interrupts = ivshmem.EnableMsix(vectors);
            _published = WindowLayout.IvshmemPeerKnown | (ivshmem.ReadU32(bar0, IvshmemRegisterDoorbell.PositionRegister) & 0xFFFF);
            PublishOwnPeerId();
        }

        for (int v = 0; v < vectors; v++)
        {
            _toPeer[v] = ntb is not null ? ntb.NewPeerDoorbell(v)
                : ivshmem is null ? new WindowDoorbell(w, mine + (4UL * (ulong)v)) : new IvshmemRegisterDoorbell(ivshmem, bar0, w, peerState, v);
            _local[v] = interrupts is null ? new EventFdDoorbell() : interrupts[v];
        }

        // Exception boundary (Faults.StartGuarded logs what escapes); the poller only reads fixed offsets.
        _poller = Faults.StartGuarded("vop-pci-poller", Poll);
    }

    public SharedWindow Window { get; }

    public int VectorCount => _local.Length;

    public bool PeerAttached => _attached;

    public Doorbell PeerDoorbell(int vector) => _toPeer[vector];

    public EventFdDoorbell LocalDoorbell(int vector) => _local[vector];

    /// <summary>Our ivshmem peer id (IVPosition) as published in our state block; 0 when not on an ivshmem doorbell.</summary>
    public uint PublishedPeerWord => _published;

    /// <summary>
    /// (Re)writes our ivshmem id into our state block when it does not read as we wrote it: the device side's
    /// layout clears the whole head of the window (both state blocks) on every (re)start.
    /// </summary>
    private void PublishOwnPeerId()
    {
        WindowAccessor w = Window.Accessor;
        ulong at = (_deviceSide ? WindowLayout.DeviceSideState : WindowLayout.DriverSideState) + WindowLayout.SideIvshmemPeer;
        if (w.ReadU32Acquire(at) != _published)
        {
            w.WriteU32Release(at, _published);
        }
    }

    private void Poll()
    {
        try
        {
            PollLoop();
        }
        finally
        {
            // However the poller ends, the peer counts as gone: the supervisor ends the session.
            _attached = false;
        }
    }

    private void PollLoop()
    {
        WindowAccessor w = Window.Accessor;
        ulong theirs = _deviceSide ? WindowLayout.DriverDoorbells : WindowLayout.DeviceDoorbells;
        ulong peerState = _deviceSide ? WindowLayout.DriverSideState : WindowLayout.DeviceSideState;
        ulong ownState = _deviceSide ? WindowLayout.DeviceSideState : WindowLayout.DriverSideState;
        var seen = new uint[_local.Length];
        for (int v = 0; v < seen.Length; v++)
        {
            seen[v] = w.ReadU32Acquire(theirs + (4UL * (ulong)v));
        }

        var heartbeat = new PeerHeartbeat();
        int idle = 0;
        while (!_disposed)
        {
            bool rang = false;
            if (_ntb is not null)
            {
                rang = _ntb.Poll(_local);
            }

            for (int v = 0; v < seen.Length && _ivshmem is null && _ntb is null; v++)
            {
                uint now = w.ReadU32Acquire(theirs + (4UL * (ulong)v));
                if (now != seen[v])
                {
                    seen[v] = now;
                    _local[v].Ring();
                    rang = true;
                }
            }

            SideSnapshot peer = SideStateBlock.Read(w, peerState);
            long nowMs = Environment.TickCount64;
            bool alive = heartbeat.Alive(peer, nowMs);
            _attached = _ntb is null ? alive : _ntb.PeerMatches(SideStateBlock.Read(w, ownState).Epoch, peer, alive, nowMs) && alive;
            if (rang)
            {
                idle = 0;
                continue;
            }

            if (_ivshmem is not null)
            {
                PublishOwnPeerId();
                Thread.Sleep(50); // interrupts wake the pumps; only the heartbeat is polled
                continue;
            }

            // Spin a little after activity, then back off: 1 ms sleeps, then 2 ms.
            if (++idle < 200)
            {
                Thread.SpinWait(50);
            }
            else
            {
                Thread.Sleep(idle < 1200 ? 1 : MaxSleepMs);
            }
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _poller.Join();
        foreach (EventFdDoorbell d in _local)
        {
            d.Dispose();
        }

        _ivshmem?.Dispose();
        _ntb?.Dispose();
        Window.Dispose();
    }
}
