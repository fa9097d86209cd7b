using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Windows;

namespace Vop.Links.Devices;

/// <summary>
/// Runs the driver side of one link: connects (retrying until the device side is there), waits for the
/// window and the devices, negotiates, starts the driver backends, and watches for the end of the session
/// — device side gone (socket EOF, state Stopped, epoch changed, heartbeat stopped), NEEDS_RESET, or a
/// quarantine here — then stops, resets and starts over. Nobody restarts anything by hand. The control
/// thread is an exception boundary: whatever the device side publishes costs at most the session.
/// </summary>
public sealed class DriverSideLink : IDisposable
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
    private readonly long[] _ends = new long[SessionEnds.Count];
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

    public IReadOnlyList<IDriverBackend> Devices => _devices;

    public LinkCounters Counters => _counters;

    public bool IsLive(int device) => _live[device];

    /// <summary>Sessions that reached DRIVER_OK.</summary>
    public long Sessions { get; private set; }

    /// <summary>The device side's epoch in the current session, else 0.</summary>
    public uint PeerEpoch { get; private set; }

    /// <summary>Ended sessions by <see cref="SessionEnds"/> label (every label present, zeros included).</summary>
    public IReadOnlyDictionary<string, long> EndsByReason
    {
        get
        {
            var d = new Dictionary<string, long>();
            for (int i = 0; i < SessionEnds.Count; i++)
            {
                d[((SessionEndReason)i).Label()] = Interlocked.Read(ref _ends[i]);
            }

            return d;
        }
    }

    public ulong NegotiatedOf(int device) => _negotiated.Length > device ? _negotiated[device] : 0;

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
                // Refused memory or window file, a handshake the server broke, or a bug: log once, retry.
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

                cancel.WaitHandle.WaitOne(RefusedRetryMs);
                continue;
            }

            using (end)
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
                        ended = new SessionEnd(SessionEndReason.Fault, Faults.Describe(e));
                    }

                    StopAll();
                    PeerEpoch = 0;
                    Interlocked.Increment(ref _ends[(int)ended.Reason]);
                    if (ended.Reason is SessionEndReason.BadWindow or SessionEndReason.Negotiation or SessionEndReason.Fault)
                    {
                        // Refused or failed before any traffic: say it once, not on every retry, and
                        // count a refusal once per time it is said.
                        if (_problems.Report(ended.Detail) && ended.Refusal is string refusal)
                        {
                            _counters.Refused(refusal);
                        }

                        cancel.WaitHandle.WaitOne(RefusedRetryMs);
                        continue;
                    }

                    LinkLog.SessionEnded(_log, _name, ended.Detail);
                    if (!cancel.IsCancellationRequested)
                    {
                        cancel.WaitHandle.WaitOne(100);
                    }
                }

                StopAll();
                if (cancel.IsCancellationRequested)
                {
                    ResetDevicesOnExit(end);
                }
            }
        }
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
                return new SessionEnd(SessionEndReason.Stopping, "stopping");
            }

            if (!end.PeerAttached)
            {
                return new SessionEnd(SessionEndReason.LinkDown, "device side went away before writing the window header");
            }

            bool notWritten = w.ReadU32Acquire(WindowLayout.HeaderMagic) == 0;
            if (!notWritten && _problems.Report($"refusing the window header: {problem}"))
            {
                _counters.Refused(LinkCounters.Refusal.BadHeader);
            }

            if (notWritten && Environment.TickCount64 > waitUntil)
            {
                return new SessionEnd(SessionEndReason.LinkDown, problem);
            }

            Thread.Sleep(notWritten ? 10 : PollMs);
        }

        return null;
    }

    /// <summary>One session: discover, negotiate, run until something ends it; returns why it ended.</summary>
    private SessionEnd Session(ILinkEnd end, CancellationToken cancel)
    {
        if (AwaitHeader(end, cancel, out WindowGeometry geometry) is SessionEnd notReady)
        {
            return notReady;
        }

        WindowAccessor w = end.Window.Accessor;
        SideSnapshot device = SideStateBlock.Read(w, WindowLayout.DeviceSideState);
        if (Discover(w, geometry, end.VectorCount, out DriverSlot[] slots) is SessionEnd refused)
        {
            return refused;
        }

        var own = new SideStateBlock(w, WindowLayout.DriverSideState);
        own.Start();
        LinkLog.Attached(_log, _name, device.Epoch);
        _problems.Clear();
        PeerEpoch = device.Epoch;

        var carver = new BufferCarver(geometry.Buffers);
        Action kick = end.PeerDoorbell(0).Ring;
        for (int d = 0; d < _devices.Count; d++)
        {
            DriverSlot slot = slots[d];
            slot.Reset();
            if (!slot.WaitAcknowledged(s_ackTimeout, kick, cancel))
            {
                return new SessionEnd(SessionEndReason.Negotiation, $"{_devices[d].Name}: device side did not acknowledge reset");
            }

            ulong wanted = _devices[d].ChooseFeatures(slot) | VirtioFeatures.Version1;
            if (!slot.BeginNegotiation(wanted) || !slot.WaitAcknowledged(s_ackTimeout, kick, cancel) || !slot.FeaturesAccepted)
            {
                return new SessionEnd(SessionEndReason.Negotiation, $"{_devices[d].Name}: device side refused features 0x{wanted:x}");
            }

            if (slot.Queues.Count > _devices[d].Stats.Count)
            {
                return new SessionEnd(SessionEndReason.Negotiation, $"{_devices[d].Name}: device offers {slot.Queues.Count} queues, this driver serves at most {_devices[d].Stats.Count}");
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
                return new SessionEnd(SessionEndReason.Negotiation, $"{_devices[d].Name}: device side did not accept DRIVER_OK");
            }

            _devices[d].Start(new DriverSession(end, slot, queues, slot.NegotiatedFeatures, carver));
            _negotiated[d] = slot.NegotiatedFeatures;
            _live[d] = true;
        }

        Sessions++;
        return Watch(end, slots, device, own, cancel);
    }

    /// <summary>
    /// Finds a slot of the right type for each of our devices and checks everything the device side
    /// published for them (docs/wire-format.md, discovery checklist) before we write anything.
    /// </summary>
    private SessionEnd? Discover(in WindowAccessor w, in WindowGeometry geometry, int vectors, out DriverSlot[] slots)
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
                return new SessionEnd(SessionEndReason.Negotiation, $"device side offers no {_devices[d].Type} device for {_devices[d].Name}");
            }

            slots[d] = found;
        }

        return DriverSlot.CheckDisjoint(slots) is string clash ? BadTable(clash) : null;
    }

    private static SessionEnd BadTable(string error) =>
        new(SessionEndReason.BadWindow, $"refusing the device table: {error}", LinkCounters.Refusal.BadTable);

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
                return new SessionEnd(SessionEndReason.Stopping, "stopping");
            }

            if (!end.PeerAttached)
            {
                return new SessionEnd(SessionEndReason.LinkDown, "device side went away");
            }

            SideSnapshot now = SideStateBlock.Read(w, WindowLayout.DeviceSideState);
            if (now.Epoch != device.Epoch || now.State != SideState.Running)
            {
                return new SessionEnd(SessionEndReason.PeerRestart, $"device side restarted or stopped (epoch {now.Epoch:x8}, state {now.State})");
            }

            if (!heartbeat.Alive(now, Environment.TickCount64))
            {
                return new SessionEnd(SessionEndReason.LinkDown, "device side heartbeat stopped");
            }

            for (int d = 0; d < _devices.Count; d++)
            {
                if (slots[d].NeedsReset)
                {
                    return new SessionEnd(SessionEndReason.NeedsReset, $"{_devices[d].Name}: device side asks for a reset");
                }

                if (_devices[d].Fault != RingErrorKind.None)
                {
                    return new SessionEnd(SessionEndReason.Broken, $"{_devices[d].Name}: quarantined: {_devices[d].Fault.Label()}");
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
