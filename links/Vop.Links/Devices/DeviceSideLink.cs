using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Vop.Links.Doorbells;
using Vop.Links.Interop;
using Vop.Links.Rings;
using Vop.Links.Supervision;
using Vop.Links.Transport;
using Vop.Links.Windows;

namespace Vop.Links.Devices;

/// <summary>
/// Runs the device side of one link: lays out the window, inserts the devices, follows each driver through
/// the status sequence, starts and stops device backends, keeps the heartbeat, quarantines faulted devices
/// (NEEDS_RESET), re-lays the window when the driver side goes away so the next one starts clean, and
/// repairs what it owns in the window (header, its state block, device table slots) when something
/// overwrote it. All of it on one control thread, which is an exception boundary; backends run their
/// own pump threads.
/// </summary>
public sealed class DeviceSideLink : ILinkSupervisor
{
    private const int HeartbeatMs = 100;
    private const int RepairCheckMs = 500;
    private const long RepairLogMs = 60_000;

    private readonly string _name;
    private readonly ILinkEnd _end;
    private readonly IReadOnlyList<IDeviceBackend> _devices;
    private readonly ILogger _log;
    private readonly EventFdDoorbell _wake = new();
    private readonly DeviceSlot[] _slots;
    private readonly DeviceQueue?[][] _queues;
    private readonly bool[] _live;
    private readonly bool[] _quarantined;
    private readonly ulong _ringArea;
    private WindowGeometry _geometry;
    private SideStateBlock? _state;
    private Thread? _thread;
    private readonly object _gate = new();
    private volatile bool _stopping;

    private readonly bool _pollPresence;
    private bool _attached;
    private readonly PeerHeartbeat _driverHeartbeat = new();
    private bool _driverAlive;
    private readonly LinkCounters _counters;
    private readonly ResetCounters _resets = new(ResetReasons.DeviceSide);
    private readonly Dictionary<string, long> _repairLogged = [];

    // pollPresence: true for links that report no peer departures themselves (pci/ntb); the control
    // loop then watches ILinkEnd.PeerAttached (state block and heartbeat) instead.
    public DeviceSideLink(string name, ILinkEnd end, IReadOnlyList<IDeviceBackend> devices, ILogger? log = null, bool pollPresence = false, LinkCounters? counters = null)
    {
        _counters = counters ?? new LinkCounters();
        _pollPresence = pollPresence;
        if (devices.Count > WindowLayout.SlotCount)
        {
            throw new ArgumentException($"link {name}: at most {WindowLayout.SlotCount} devices");
        }

        _name = name;
        _end = end;
        _devices = devices;
        _log = log ?? NullLogger.Instance;
        _slots = new DeviceSlot[devices.Count];
        _queues = new DeviceQueue?[devices.Count][];
        _live = new bool[devices.Count];
        _quarantined = new bool[devices.Count];
        ulong ring = 4096;
        int queues = 0;
        foreach (IDeviceBackend d in devices)
        {
            foreach (ushort size in d.QueueSizes)
            {
                ring += RingAreaAllocator.BytesFor(size);
                queues++;
            }
        }

        // Every queue gets a vector of its own: an eventfd is drained by whoever waits on it, so two
        // pumps sharing one would steal each other's wake-ups.
        if (queues + 1 > end.VectorCount)
        {
            throw new ArgumentException($"link {name}: {queues} queues need {queues + 1} doorbell vectors (one per queue and control), the link has {end.VectorCount}");
        }

        _ringArea = ring;
    }

    public string Name => _name;

    public LinkSide Side => LinkSide.Device;

    public string Description => "device side over a shared window";

    public IReadOnlyList<IDeviceBackend> Devices => _devices;

    /// <summary>Device status per device as the device side accepted it.</summary>
    public VirtioStatus StatusOf(int device) => _slots[device]?.Status ?? VirtioStatus.Reset;

    public ulong NegotiatedOf(int device) => _slots[device]?.NegotiatedFeatures ?? 0;

    public bool IsLive(int device) => _live[device];

    public bool Up => _live.Any(l => l);

    /// <summary>Resets of live devices by the driver (status written to 0).</summary>
    public long DriverResets => _resets.Of(ResetReason.DriverReset);

    /// <summary>Driver sides that left or went silent.</summary>
    public long PeerDepartures => _resets.Of(ResetReason.LinkDown);

    /// <summary>Devices quarantined here (NEEDS_RESET set).</summary>
    public long Quarantines => _resets.Of(ResetReason.Broken);

    /// <summary>Driver resets, peer departures and quarantines.</summary>
    public long Resets => _resets.Total;

    public IReadOnlyList<KeyValuePair<ResetReason, long>> ResetsByReason => _resets.Snapshot();

    public int DeviceCount => _devices.Count;

    public SupervisedDevice DeviceAt(int index)
    {
        IDeviceBackend d = _devices[index];
        return new SupervisedDevice(d.Name, d.Type, _live[index], (uint)StatusOf(index), NegotiatedOf(index), SupervisedDevice.Cells(d.Stats, d.QueueSizes.Count));
    }

    public LinkCounters Counters => _counters;

    /// <summary>The driver side's epoch while it runs, else 0.</summary>
    public uint PeerEpoch
    {
        get
        {
            SideSnapshot s = SideStateBlock.Read(_end.Window.Accessor, WindowLayout.DriverSideState);
            return s.State == SideState.Running ? s.Epoch : 0;
        }
    }

    /// <summary>Lays out the window, inserts the devices and starts the control thread.</summary>
    public void Start()
    {
        LayOut();
        _thread = new Thread(Run) { Name = $"vop-link-{_name}", IsBackground = true };
        _thread.Start();
    }

    /// <summary>
    /// Call when the transport-level peer attached or left (ivshmem socket connect/EOF). A departure is
    /// handled before returning, so the transport admits the next peer only onto a fresh layout.
    /// </summary>
    public void NotifyPeerChanged()
    {
        if (!_end.PeerAttached && !_stopping)
        {
            lock (_gate)
            {
                PeerLeft();
            }
        }

        _wake.Ring();
    }

    private void LayOut()
    {
        WindowAccessor w = _end.Window.Accessor;
        _geometry = WindowHeader.Initialize(w, _ringArea);
        var rings = new RingAreaAllocator(_geometry);
        ushort vector = 1;
        for (int i = 0; i < _devices.Count; i++)
        {
            IDeviceBackend d = _devices[i];
            var layouts = new SplitRingLayout[d.QueueSizes.Count];
            var vectors = new ushort[layouts.Length];
            for (int q = 0; q < layouts.Length; q++)
            {
                layouts[q] = rings.Allocate(d.QueueSizes[q]);
                vectors[q] = vector++;
            }

            _slots[i] = new DeviceSlot(w, i, d.Type, d.OfferedFeatures, layouts, vectors);
            _slots[i].Insert(d.Config);
            _queues[i] = new DeviceQueue?[layouts.Length];
            _quarantined[i] = false;
        }

        _state ??= new SideStateBlock(w, WindowLayout.DeviceSideState);
        _state.Start();
    }

    private void Run()
    {
        // Exception boundary: a fault in the control loop is logged, counted and the loop goes on; the
        // window and the devices are re-checked on the next pass.
        while (!_stopping)
        {
            try
            {
                Control();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _counters.InternalError();
                LinkLog.ThreadFault(_log, $"link {_name} control", Faults.Describe(e));
                Thread.Sleep(HeartbeatMs);
            }
        }
    }

    private void Control()
    {
        using var epoll = new Epoll(4);
        epoll.Add(_wake.Fd);
        epoll.Add(_end.LocalDoorbell(0).Fd);
        long nextBeat = 0;
        long nextRepairCheck = 0;
        while (!_stopping)
        {
            int ready = epoll.Wait(HeartbeatMs);
            for (int i = 0; i < ready; i++)
            {
                int fd = epoll.ReadyFd(i);
                if (fd == _wake.Fd)
                {
                    _wake.Drain();
                }
                else
                {
                    _end.LocalDoorbell(0).Drain();
                }
            }

            if (_stopping)
            {
                break;
            }

            lock (_gate)
            {
                if (_pollPresence)
                {
                    bool attached = _end.PeerAttached;
                    if (_attached && !attached)
                    {
                        PeerLeft();
                    }

                    _attached = attached;
                }
                else
                {
                    WatchDriverHeartbeat();
                }

                for (int d = 0; d < _devices.Count; d++)
                {
                    PollDeviceGuarded(d);
                }
            }

            long now = Environment.TickCount64;
            if (now >= nextRepairCheck)
            {
                lock (_gate)
                {
                    RepairOwnedParts();
                }

                nextRepairCheck = now + RepairCheckMs;
            }

            if (now >= nextBeat)
            {
                _state!.Beat();
                nextBeat = now + HeartbeatMs;
            }
        }
    }

    /// <summary>A device whose status handling or backend start throws is quarantined, not the link.</summary>
    private void PollDeviceGuarded(int d)
    {
        try
        {
            PollDevice(d);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _counters.InternalError();
            LinkLog.ThreadFault(_log, $"link {_name} device {_devices[d].Name}", Faults.Describe(e));
            Quarantine(d);
        }
    }

    /// <summary>Stops the device and sets NEEDS_RESET, so the driver resets it before using it again.</summary>
    private void Quarantine(int d)
    {
        _quarantined[d] = true;
        _resets.Count(ResetReason.Broken);
        StopDevice(d);
        _slots[d].RequestReset();
        _end.PeerDoorbell(0).Ring();
    }

    /// <summary>
    /// The header, our state block and our slots are ours alone (docs/wire-format.md); if they no longer
    /// read as we wrote them, someone scribbled: rewrite them in place (no re-layout, a live session keeps
    /// its rings), count it, and log it at most once a minute per part.
    /// </summary>
    private void RepairOwnedParts()
    {
        WindowAccessor w = _end.Window.Accessor;
        if (!HeaderImage.IsIntact(w, _geometry))
        {
            uint magic = w.ReadU32(WindowLayout.HeaderMagic);
            HeaderImage.Write(w, _geometry);
            Repaired(LinkCounters.Part.Header, $"window header (magic read 0x{magic:x8})");
        }

        if (_state is { } state && !state.IsIntact())
        {
            state.Repair();
            Repaired(LinkCounters.Part.State, "device side state block");
        }

        for (int d = 0; d < _slots.Length; d++)
        {
            if (!_slots[d].IsIntact())
            {
                _slots[d].Repair();
                Repaired(LinkCounters.Part.Slot, $"device table slot {d} ({_devices[d].Name})");
            }
        }
    }

    private void Repaired(string part, string what)
    {
        _counters.Repaired(part);
        long now = Environment.TickCount64;
        if (!_repairLogged.TryGetValue(part, out long last) || now - last >= RepairLogMs)
        {
            _repairLogged[part] = now;
            LinkLog.WindowRepaired(_log, _name, what);
        }
    }

    private void PollDevice(int d)
    {
        DeviceSlot slot = _slots[d];
        IDeviceBackend backend = _devices[d];
        SlotEvent ev = slot.Poll(e =>
        {
            if (e is SlotEvent.Reset or SlotEvent.Failed or SlotEvent.FeaturesAccepted)
            {
                // Reset is a fence: the pump stops before the driver sees the acknowledgement.
                StopDevice(d);
            }

            if (e == SlotEvent.FeaturesAccepted)
            {
                PrepareQueues(d);
            }
        });

        switch (ev)
        {
            case SlotEvent.DriverOk:
                if (_queues[d].Any(q => q is null))
                {
                    slot.RequestReset();
                    break;
                }

                _live[d] = true;
                backend.Start(new DeviceSession(_end, slot, _queues[d]!, slot.NegotiatedFeatures));
                LinkLog.DeviceLive(_log, _name, backend.Name, slot.NegotiatedFeatures);
                break;
            case SlotEvent.Reset:
                _resets.Count(ResetReason.DriverReset);
                _quarantined[d] = false;
                break;
            case SlotEvent.Failed:
            case SlotEvent.FeaturesRefused:
                LinkLog.NegotiationFailed(_log, _name, backend.Name, ev.ToString());
                break;
        }

        if (_live[d] && backend.Fault != RingErrorKind.None && !_quarantined[d])
        {
            LinkLog.DeviceQuarantined(_log, _name, backend.Name, backend.Fault.Label());
            Quarantine(d);
        }
    }

    private void PrepareQueues(int d)
    {
        DeviceSlot slot = _slots[d];
        bool eventIdx = (slot.NegotiatedFeatures & VirtioFeatures.EventIdx) != 0;
        WindowAccessor w = _end.Window.Accessor;
        for (int q = 0; q < slot.Queues.Count; q++)
        {
            var queue = new DeviceQueue(w, slot.Queues[q], _geometry.Buffers, eventIdx, _end.PeerDoorbell(slot.Vectors[q]), _devices[d].Stats[q]);
            queue.Reset();
            _queues[d][q] = queue;
        }
    }

    private void StopDevice(int d)
    {
        if (_live[d])
        {
            _devices[d].Stop();
            _live[d] = false;
        }
    }

    /// <summary>
    /// On links whose presence is a socket (loopback), the peer process can stay while the driver side in it
    /// dies: a QEMU guest's ivshmem device outlives the vop inside the guest, and a paused VM stops beating.
    /// A driver side whose block still says Running but whose heartbeat stood still for
    /// <see cref="PeerHeartbeat.TimeoutMs"/> counts as gone. A clean stop (state Stopped, socket closed) is
    /// handled elsewhere, and a fresh layout clears the block, so one death is one departure.
    /// </summary>
    private void WatchDriverHeartbeat()
    {
        SideSnapshot s = SideStateBlock.Read(_end.Window.Accessor, WindowLayout.DriverSideState);
        bool alive = _driverHeartbeat.Alive(s, Environment.TickCount64);
        if (_driverAlive && !alive && s.State == SideState.Running)
        {
            LinkLog.DriverSideSilent(_log, _name, PeerHeartbeat.TimeoutMs);
            PeerLeft();
        }

        _driverAlive = alive;
    }

    private void PeerLeft()
    {
        _resets.Count(ResetReason.LinkDown);
        LinkLog.DriverSideLeft(_log, _name);
        for (int d = 0; d < _devices.Count; d++)
        {
            StopDevice(d);
        }

        // A fresh layout: the next driver side must not see this one's rings, status or features.
        LayOut();
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Ring();
        _thread?.Join();
        lock (_gate)
        {
            for (int d = 0; d < _devices.Count; d++)
            {
                StopDevice(d);
                _slots[d]?.Remove();
            }
        }

        _state?.Stop();
        _wake.Dispose();
    }
}
