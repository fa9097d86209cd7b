using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Vop.Links.Rings;
using Vop.Links.Supervision;
using Vop.Links.Transport;
using Vop.Links.Windows;

namespace Vop.Links.Devices;

/// <summary>
/// Runs the driver side of one link: connects (retrying until the device side is there), waits for the
/// window and the devices, negotiates, starts the driver backends, and watches for the end of the session
/// — device side gone (socket EOF, state Stopped, epoch changed, heartbeat stopped), NEEDS_RESET, or a
/// quarantine here — then stops, resets and starts over. Nobody restarts anything by hand. The control
/// thread is an exception boundary: whatever the device side publishes costs at most the session. Every
/// session ends with a <see cref="SessionEnd"/> whose typed reason is what <see cref="ResetsByReason"/> counts.
/// </summary>
public sealed class DriverSideLink : ILinkSupervisor
{
    private const int PollMs = 50;
    private const int RefusedRetryMs = 1000;
    private static readonly TimeSpan s_ackTimeout = TimeSpan.FromSeconds(5);

    private readonly string _name;
    private readonly Func<CancellationToken, ILinkEnd> _connect;
    private readonly IReadOnlyList<IDriverBackend> _devices;
    private readonly ILogger _log;
    private readonly LinkCounters _counters;
    private readonly ProblemLog _problems;
    private readonly CancellationTokenSource _stop = new();
    private readonly bool[] _live;
    private readonly ResetCounters _ends = new(ResetReasons.DriverSide);
    private ulong[] _negotiated = [];
    private Thread? _thread;

    public DriverSideLink(string name, Func<CancellationToken, ILinkEnd> connect, IReadOnlyList<IDriverBackend> devices, ILogger? log = null, LinkCounters? counters = null)
    {
        _name = name;
        _connect = connect;
        _devices = devices;
        _log = log ?? NullLogger.Instance;
        _counters = counters ?? new LinkCounters();
        _problems = new ProblemLog(_log, name);
        _live = new bool[devices.Count];
    }

    public string Name => _name;

    public LinkSide Side => LinkSide.Driver;

    public string Description => "driver side over a shared window";

    public IReadOnlyList<IDriverBackend> Devices => _devices;

    public LinkCounters Counters => _counters;

    public bool IsLive(int device) => _live[device];

    public bool Up => _live.Any(l => l);

    /// <summary>Sessions that reached DRIVER_OK.</summary>
    public long Sessions { get; private set; }

    /// <summary>The device side's epoch in the current session, else 0.</summary>
    public uint PeerEpoch { get; private set; }

    /// <summary>Sessions after the first: each one began because the one before it ended.</summary>
    public long Resets => Math.Max(0, Sessions - 1);

    /// <summary>Ended sessions by why they ended (every driver-side reason present, zeros included).</summary>
    public IReadOnlyList<KeyValuePair<ResetReason, long>> ResetsByReason => _ends.Snapshot();

    public ulong NegotiatedOf(int device) => _negotiated.Length > device ? _negotiated[device] : 0;

    public int DeviceCount => _devices.Count;

    /// <summary>A driver has no status of its own to read back: a live device is through DRIVER_OK (0xF).</summary>
    public SupervisedDevice DeviceAt(int index)
    {
        IDriverBackend d = _devices[index];
        bool live = _live[index];
        return new SupervisedDevice(d.Name, d.Type, live, live ? 0xFu : 0u, NegotiatedOf(index), SupervisedDevice.Cells(d.Stats, d.QueueCount));
    }

    public void Start()
    {
        _negotiated = new ulong[_devices.Count];
        _thread = new Thread(Run) { Name = $"vop-link-{_name}", IsBackground = true };
        _thread.Start();
    }

    private void Run()
    {
        CancellationToken cancel = _stop.Token;
        while (!cancel.IsCancellationRequested)
        {
            ILinkEnd end;
            try
            {
                end = _connect(cancel);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e)
            {
                ConnectFailed(e);
                cancel.WaitHandle.WaitOne(RefusedRetryMs);
                continue;
            }

            using (end)
            {
                Serve(end, cancel);
            }
        }
    }

    /// <summary>Refused memory or window file, a handshake the server broke, or a bug: logged once; the caller retries.</summary>
    private void ConnectFailed(Exception e)
    {
        if (e is LinkRefusedException refused)
        {
            if (_problems.Report(e.Message))
            {
                _counters.Refused(refused.Reason);
            }
        }
        else if (e is IOException or InvalidDataException)
        {
            _problems.Report(e.Message);
        }
        else
        {
            _counters.InternalError();
            _problems.Report(Faults.Describe(e));
        }
    }

    /// <summary>Runs one session after another over one connection, until the device side detaches or we stop.</summary>
    private void Serve(ILinkEnd end, CancellationToken cancel)
    {
        while (!cancel.IsCancellationRequested && end.PeerAttached)
        {
            SessionEnd ended;
            try
            {
                ended = Session(end, cancel);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _counters.InternalError();
                ended = new SessionEnd(ResetReason.Fault, Faults.Describe(e));
            }

            Ended(ended, cancel);
        }

        StopAll();
        if (cancel.IsCancellationRequested)
        {
            ResetDevicesOnExit(end);
        }
    }

    /// <summary>Stops the devices, counts the end by its reason, says why, and pauses before the next session.</summary>
    private void Ended(SessionEnd ended, CancellationToken cancel)
    {
        StopAll();
        PeerEpoch = 0;
        _ends.Count(ended.Reason);
        if (ended.RepeatsOnRetry)
        {
            // Say it once, not on every retry, and count a refusal once per time it is said.
            if (_problems.Report(ended.Detail) && ended.Refusal is string refusal)
            {
                _counters.Refused(refusal);
            }

            cancel.WaitHandle.WaitOne(RefusedRetryMs);
            return;
        }

        LinkLog.SessionEnded(_log, _name, ended.Detail);
        if (!cancel.IsCancellationRequested)
        {
            cancel.WaitHandle.WaitOne(100);
        }
    }

    /// <summary>
    /// One session in its three phases: <see cref="Discover"/> the window and a slot per device,
    /// <see cref="Negotiate"/> each device to DRIVER_OK and start its backend, <see cref="Watch"/> until
    /// something ends it. Returns why it ended.
    /// </summary>
    private SessionEnd Session(ILinkEnd end, CancellationToken cancel)
    {
        if (Discover(end, cancel, out WindowGeometry geometry, out SideSnapshot device, out DriverSlot[] slots) is SessionEnd notFound)
        {
            return notFound;
        }

        var own = new SideStateBlock(end.Window.Accessor, WindowLayout.DriverSideState);
        own.Start();
        LinkLog.Attached(_log, _name, device.Epoch);
        _problems.Clear();
        PeerEpoch = device.Epoch;

        if (Negotiate(end, geometry, slots, cancel) is SessionEnd refused)
        {
            return refused;
        }

        Sessions++;
        return Watch(end, slots, device, own, cancel);
    }

    /// <summary>
    /// Discovery: waits for the window header, reads the device side's state block (its epoch names this
    /// session), and finds and checks a slot for each of our devices. Nothing is written to the window yet.
    /// </summary>
    private SessionEnd? Discover(ILinkEnd end, CancellationToken cancel, out WindowGeometry geometry, out SideSnapshot device, out DriverSlot[] slots)
    {
        device = default;
        slots = [];
        if (AwaitHeader(end, cancel, out geometry) is SessionEnd notReady)
        {
            return notReady;
        }

        WindowAccessor w = end.Window.Accessor;
        device = SideStateBlock.Read(w, WindowLayout.DeviceSideState);
        return FindSlots(w, geometry, end.VectorCount, out slots);
    }

    /// <summary>
    /// Waits for a valid header. A header that is there but wrong (bad magic, version, geometry) is logged
    /// once and counted; we keep waiting, because the device side repairs what it owns.
    /// </summary>
    private SessionEnd? AwaitHeader(ILinkEnd end, CancellationToken cancel, out WindowGeometry geometry)
    {
        WindowAccessor w = end.Window.Accessor;
        long waitUntil = Environment.TickCount64 + 10_000;
        while (WindowHeader.TryRead(w, out geometry) is string problem)
        {
            if (cancel.IsCancellationRequested)
            {
                return new SessionEnd(ResetReason.Stopping, "stopping");
            }

            if (!end.PeerAttached)
            {
                return new SessionEnd(ResetReason.LinkDown, "device side went away before writing the window header");
            }

            bool notWritten = w.ReadU32Acquire(WindowLayout.HeaderMagic) == 0;
            if (!notWritten && _problems.Report($"refusing the window header: {problem}"))
            {
                _counters.Refused(LinkCounters.Refusal.BadHeader);
            }

            if (notWritten && Environment.TickCount64 > waitUntil)
            {
                return new SessionEnd(ResetReason.LinkDown, problem);
            }

            Thread.Sleep(notWritten ? 10 : PollMs);
        }

        return null;
    }

    /// <summary>
    /// Finds a slot of the right type for each of our devices and checks everything the device side
    /// published for them (docs/wire-format.md, discovery checklist) before we write anything.
    /// </summary>
    private SessionEnd? FindSlots(in WindowAccessor w, in WindowGeometry geometry, int vectors, out DriverSlot[] slots)
    {
        slots = new DriverSlot[_devices.Count];
        var used = new HashSet<int>();
        for (int d = 0; d < _devices.Count; d++)
        {
            DriverSlot? found = null;
            for (int i = 0; i < WindowLayout.SlotCount && found is null; i++)
            {
                if (used.Contains(i))
                {
                    continue;
                }

                DriverSlot? s = DriverSlot.TryDiscover(w, geometry, i, vectors, out string? error);
                if (error is not null)
                {
                    return BadTable(error);
                }

                if (s is not null && s.Type == _devices[d].Type)
                {
                    found = s;
                    used.Add(i);
                }
            }

            if (found is null)
            {
                return new SessionEnd(ResetReason.Negotiation, $"device side offers no {_devices[d].Type} device for {_devices[d].Name}");
            }

            slots[d] = found;
        }

        return DriverSlot.CheckDisjoint(slots) is string clash ? BadTable(clash) : null;
    }

    private static SessionEnd BadTable(string error) =>
        new(ResetReason.BadWindow, $"refusing the device table: {error}", LinkCounters.Refusal.BadTable);

    /// <summary>
    /// Negotiation, device by device: reset (acknowledged), features (accepted), queues built on the cells
    /// we have, DRIVER_OK (acknowledged), then the backend starts and the device is live.
    /// </summary>
    private SessionEnd? Negotiate(ILinkEnd end, in WindowGeometry geometry, DriverSlot[] slots, CancellationToken cancel)
    {
        WindowAccessor w = end.Window.Accessor;
        var carver = new BufferCarver(geometry.Buffers);
        Action kick = end.PeerDoorbell(0).Ring;
        for (int d = 0; d < _devices.Count; d++)
        {
            DriverSlot slot = slots[d];
            slot.Reset();
            if (!slot.WaitAcknowledged(s_ackTimeout, kick, cancel))
            {
                return new SessionEnd(ResetReason.Negotiation, $"{_devices[d].Name}: device side did not acknowledge reset");
            }

            ulong wanted = _devices[d].ChooseFeatures(slot) | VirtioFeatures.Version1;
            if (!slot.BeginNegotiation(wanted) || !slot.WaitAcknowledged(s_ackTimeout, kick, cancel) || !slot.FeaturesAccepted)
            {
                return new SessionEnd(ResetReason.Negotiation, $"{_devices[d].Name}: device side refused features 0x{wanted:x}");
            }

            if (slot.Queues.Count > _devices[d].Stats.Count)
            {
                return new SessionEnd(ResetReason.Negotiation, $"{_devices[d].Name}: device offers {slot.Queues.Count} queues, this driver serves at most {_devices[d].Stats.Count}");
            }

            bool eventIdx = (slot.NegotiatedFeatures & VirtioFeatures.EventIdx) != 0;
            var queues = new DriverQueue[slot.Queues.Count];
            for (int q = 0; q < queues.Length; q++)
            {
                queues[q] = new DriverQueue(w, slot.Queues[q], geometry.Buffers, eventIdx, end.PeerDoorbell(slot.Vectors[q]), _devices[d].Stats[q]);
            }

            slot.SetDriverOk();
            if (!slot.WaitAcknowledged(s_ackTimeout, kick, cancel) || (slot.DeviceStatus & VirtioStatus.DriverOk) == 0)
            {
                return new SessionEnd(ResetReason.Negotiation, $"{_devices[d].Name}: device side did not accept DRIVER_OK");
            }

            _devices[d].Start(new DriverSession(end, slot, queues, slot.NegotiatedFeatures, carver));
            _negotiated[d] = slot.NegotiatedFeatures;
            _live[d] = true;
        }

        return null;
    }

    /// <summary>The running session: returns when the device side goes, restarts, asks for a reset, or a device here faults.</summary>
    private SessionEnd Watch(ILinkEnd end, DriverSlot[] slots, SideSnapshot device, SideStateBlock own, CancellationToken cancel)
    {
        WindowAccessor w = end.Window.Accessor;
        var heartbeat = new PeerHeartbeat();
        while (true)
        {
            // Waking on the control vector is a hint; the checks below are the truth.
            if (end.LocalDoorbell(0).Wait(PollMs))
            {
                end.LocalDoorbell(0).Drain();
            }

            own.Beat();
            if (cancel.IsCancellationRequested)
            {
                return new SessionEnd(ResetReason.Stopping, "stopping");
            }

            if (!end.PeerAttached)
            {
                return new SessionEnd(ResetReason.LinkDown, "device side went away");
            }

            SideSnapshot now = SideStateBlock.Read(w, WindowLayout.DeviceSideState);
            if (now.Epoch != device.Epoch || now.State != SideState.Running)
            {
                return new SessionEnd(ResetReason.PeerRestart, $"device side restarted or stopped (epoch {now.Epoch:x8}, state {now.State})");
            }

            // PeerHeartbeat is the one rule every side applies to its peer (DeviceSideLink, PciLinkEnd): Running
            // and a heartbeat that moved within its timeout. The state test above decides first, so a device
            // side that said Stopped ends the session as peer_restart here, a silent one as link_down.
            if (!heartbeat.Alive(now, Environment.TickCount64))
            {
                return new SessionEnd(ResetReason.LinkDown, "device side heartbeat stopped");
            }

            for (int d = 0; d < _devices.Count; d++)
            {
                if (slots[d].NeedsReset)
                {
                    return new SessionEnd(ResetReason.NeedsReset, $"{_devices[d].Name}: device side asks for a reset");
                }

                if (_devices[d].Fault != RingErrorKind.None)
                {
                    return new SessionEnd(ResetReason.Broken, $"{_devices[d].Name}: quarantined: {_devices[d].Fault.Label()}");
                }
            }
        }
    }

    private void StopAll()
    {
        for (int d = 0; d < _devices.Count; d++)
        {
            if (_live[d])
            {
                _devices[d].Stop();
                _live[d] = false;
            }
        }
    }

    /// <summary>A clean stop resets our devices so the device side drops its state at once.</summary>
    private static void ResetDevicesOnExit(ILinkEnd end)
    {
        try
        {
            WindowAccessor w = end.Window.Accessor;
            if (WindowHeader.TryRead(w, out WindowGeometry g) is not null)
            {
                return;
            }

            for (int i = 0; i < WindowLayout.SlotCount; i++)
            {
                DriverSlot? s = DriverSlot.TryDiscover(w, g, i, end.VectorCount, out _);
                s?.Reset();
            }

            new SideStateBlock(w, WindowLayout.DriverSideState).Stop();
            end.PeerDoorbell(0).Ring();
        }
        catch (WindowAccessException)
        {
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread?.Join();
        _stop.Dispose();
    }
}
