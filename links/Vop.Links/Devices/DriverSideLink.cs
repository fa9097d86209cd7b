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
/// quarantine here — then stops, resets and starts over. Nobody restarts anything by hand.
/// </summary>
public sealed class DriverSideLink : IDisposable
{
    private const int PollMs = 50;
    private const int HeartbeatTimeoutMs = 3000;
    private static readonly TimeSpan s_ackTimeout = TimeSpan.FromSeconds(5);

    private readonly string _name;
    private readonly Func<CancellationToken, ILinkEnd> _connect;
    private readonly IReadOnlyList<IDriverBackend> _devices;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly bool[] _live;
    private Thread? _thread;

    public DriverSideLink(string name, Func<CancellationToken, ILinkEnd> connect, IReadOnlyList<IDriverBackend> devices, ILogger? log = null)
    {
        _name = name;
        _connect = connect;
        _devices = devices;
        _log = log ?? NullLogger.Instance;
        _live = new bool[devices.Count];
    }

    public string Name => _name;

    public IReadOnlyList<IDriverBackend> Devices => _devices;

    public bool IsLive(int device) => _live[device];

    /// <summary>Sessions that reached DRIVER_OK.</summary>
    public long Sessions { get; private set; }

    /// <summary>The device side's epoch in the current session, else 0.</summary>
    public uint PeerEpoch { get; private set; }

    /// <summary>Ended sessions by reason: link_down, peer_restart, needs_reset, broken, other.</summary>
    public IReadOnlyDictionary<string, long> EndsByReason
    {
        get
        {
            lock (_ends)
            {
                return new Dictionary<string, long>(_ends);
            }
        }
    }

    private readonly Dictionary<string, long> _ends = [];

    public ulong NegotiatedOf(int device) => _negotiated.Length > device ? _negotiated[device] : 0;

    private ulong[] _negotiated = [];

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
            catch (Exception e) when (e is IOException or InvalidDataException)
            {
                LinkLog.DriverSideProblem(_log, _name, e.Message);
                cancel.WaitHandle.WaitOne(1000);
                continue;
            }

            using (end)
            {
                while (!cancel.IsCancellationRequested && end.PeerAttached)
                {
                    string reason;
                    try
                    {
                        reason = Session(end, cancel);
                    }
                    catch (Exception e) when (e is IOException or InvalidDataException or TimeoutException or InvalidOperationException or WindowAccessException)
                    {
                        reason = e.Message;
                    }

                    StopAll();
                    PeerEpoch = 0;
                    Count(reason);
                    LinkLog.SessionEnded(_log, _name, reason);
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

    /// <summary>One session: discover, negotiate, run until something ends it; returns why it ended.</summary>
    private string Session(ILinkEnd end, CancellationToken cancel)
    {
        WindowAccessor w = end.Window.Accessor;
        WindowGeometry geometry;
        long waitUntil = Environment.TickCount64 + 10_000;
        while (WindowHeader.TryRead(w, out geometry) is string notYet)
        {
            if (cancel.IsCancellationRequested || !end.PeerAttached)
            {
                return "stopped";
            }

            if (Environment.TickCount64 > waitUntil)
            {
                return notYet;
            }

            Thread.Sleep(10);
        }

        SideSnapshot device = SideStateBlock.Read(w, WindowLayout.DeviceSideState);
        var own = new SideStateBlock(w, WindowLayout.DriverSideState);
        own.Start();
        LinkLog.Attached(_log, _name, device.Epoch);
        PeerEpoch = device.Epoch;

        var slots = new DriverSlot[_devices.Count];
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

                DriverSlot? s = DriverSlot.TryDiscover(w, geometry, i, end.VectorCount, out string? error);
                if (error is not null)
                {
                    return error;
                }

                if (s is not null && s.Type == _devices[d].Type)
                {
                    found = s;
                    used.Add(i);
                }
            }

            if (found is null)
            {
                return $"device side offers no {_devices[d].Type} device for {_devices[d].Name}";
            }

            slots[d] = found;
        }

        var carver = new BufferCarver(geometry.Buffers);
        Action kick = end.PeerDoorbell(0).Ring;
        for (int d = 0; d < _devices.Count; d++)
        {
            DriverSlot slot = slots[d];
            slot.Reset();
            if (!slot.WaitAcknowledged(s_ackTimeout, kick, cancel))
            {
                return $"{_devices[d].Name}: device side did not acknowledge reset";
            }

            ulong wanted = _devices[d].ChooseFeatures(slot) | VirtioFeatures.Version1;
            if (!slot.BeginNegotiation(wanted) || !slot.WaitAcknowledged(s_ackTimeout, kick, cancel) || !slot.FeaturesAccepted)
            {
                return $"{_devices[d].Name}: device side refused features 0x{wanted:x}";
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
                return $"{_devices[d].Name}: device side did not accept DRIVER_OK";
            }

            _devices[d].Start(new DriverSession(end, slot, queues, slot.NegotiatedFeatures, carver));
            _negotiated[d] = slot.NegotiatedFeatures;
            _live[d] = true;
        }

        Sessions++;
        ulong lastBeat = SideStateBlock.Read(w, WindowLayout.DeviceSideState).Heartbeat;
        long lastBeatSeen = Environment.TickCount64;
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
                return "stopping";
            }

            if (!end.PeerAttached)
            {
                return "device side went away";
            }

            SideSnapshot now = SideStateBlock.Read(w, WindowLayout.DeviceSideState);
            if (now.Epoch != device.Epoch || now.State != SideState.Running)
            {
                return $"device side restarted or stopped (epoch {now.Epoch:x8}, state {now.State})";
            }

            if (now.Heartbeat != lastBeat)
            {
                lastBeat = now.Heartbeat;
                lastBeatSeen = Environment.TickCount64;
            }
            else if (Environment.TickCount64 - lastBeatSeen > HeartbeatTimeoutMs)
            {
                return "device side heartbeat stopped";
            }

            for (int d = 0; d < _devices.Count; d++)
            {
                if (slots[d].NeedsReset)
                {
                    return $"{_devices[d].Name}: device side asks for a reset";
                }

                if (_devices[d].Fault != RingErrorKind.None)
                {
                    return $"{_devices[d].Name}: quarantined: {_devices[d].Fault.Label()}";
                }
            }
        }
    }

    private void Count(string reason)
    {
        string kind = reason.Contains("went away", StringComparison.Ordinal) || reason.Contains("heartbeat", StringComparison.Ordinal) ? "link_down"
            : reason.Contains("restarted or stopped", StringComparison.Ordinal) ? "peer_restart"
            : reason.Contains("asks for a reset", StringComparison.Ordinal) ? "needs_reset"
            : reason.Contains("quarantined", StringComparison.Ordinal) ? "broken"
            : reason == "stopping" ? "stopping"
            : "other";
        lock (_ends)
        {
            _ends[kind] = _ends.GetValueOrDefault(kind) + 1;
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
