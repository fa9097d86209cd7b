using System.Diagnostics;
using Vop.Links.Doorbells;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Windows;
using Vop.Links.Stats;

namespace Vop.Links.Diagnostics;

/// <summary>
/// Device side of the ring-test device: two queues, "tx" (driver to device: the device checks every
/// buffer's content and completes it) and "rx" (device to driver: the device fills posted buffers).
/// Exercises the whole transport (layout, negotiation, EVENT_IDX, doorbells) without a TAP.
/// </summary>
public sealed class RingTestDevice
{
    public const ushort ToDeviceVector = 1;
    public const ushort ToDriverVector = 2;
    private const int Budget = 64;
    private const int SpinPolls = 64;

    private readonly ILinkEnd _end;
    private readonly RingTestConfig _config;
    private readonly ushort _queueSize;
    private WindowGeometry _geometry;
    private DeviceSlot? _slot;
    private DeviceQueue? _toDevice;
    private DeviceQueue? _toDriver;

    public RingTestDevice(ILinkEnd end, RingTestConfig config, ushort queueSize)
    {
        _end = end;
        _config = config;
        _queueSize = queueSize;
    }

    public QueueStats ToDeviceStats { get; } = new("tx");

    public QueueStats ToDriverStats { get; } = new("rx");

    public DeviceSlot Slot => _slot ?? throw new InvalidOperationException("not inserted");

    /// <summary>Lays out the window and inserts the device in slot 0.</summary>
    public void Insert()
    {
        WindowAccessor w = _end.Window.Accessor;
        _geometry = WindowHeader.Initialize(w, (2 * RingAreaAllocator.BytesFor(_queueSize)) + 4096);
        var rings = new RingAreaAllocator(_geometry);
        SplitRingLayout[] layouts = [rings.Allocate(_queueSize), rings.Allocate(_queueSize)];
        _slot = new DeviceSlot(w, 0, DeviceType.RingTest, VirtioFeatures.Version1 | VirtioFeatures.EventIdx, layouts, [ToDeviceVector, ToDriverVector]);
        _slot.Insert(_config.Encode());
        new SideStateBlock(w, WindowLayout.DeviceSideState).Start();
    }

    /// <summary>Follows the driver to DRIVER_OK, then runs the configured directions to completion.</summary>
    public IReadOnlyList<RingTestResult> Run(CancellationToken cancel)
    {
        DeviceSlot slot = Slot;
        EventFdDoorbell control = _end.LocalDoorbell(0);
        bool live = false;
        while (!live)
        {
            cancel.ThrowIfCancellationRequested();
            SlotEvent ev = slot.Poll(OnEvent);
            if (ev == SlotEvent.DriverOk)
            {
                live = true;
            }
            else if (ev is SlotEvent.None or SlotEvent.Progress)
            {
                if (control.Wait(50))
                {
                    control.Drain();
                }
            }
        }

        var results = new List<RingTestResult>();
        var threads = new List<Thread>();
        if ((_config.Directions & RingTestDirections.ToDevice) != 0)
        {
            threads.Add(Worker("ring-test-consume", () => Consume(_toDevice!, cancel), results));
        }

        if ((_config.Directions & RingTestDirections.ToDriver) != 0)
        {
            threads.Add(Worker("ring-test-produce", () => Produce(_toDriver!, cancel), results));
        }

        foreach (Thread t in threads)
        {
            t.Join();
        }

        return results;
    }

    private static Thread Worker(string name, Func<RingTestResult> body, List<RingTestResult> results)
    {
        var t = new Thread(() =>
        {
            RingTestResult r;
            try
            {
                r = body();
            }
            catch (OperationCanceledException)
            {
                r = new RingTestResult(name, 0, 0, TimeSpan.Zero, "cancelled");
            }

            lock (results)
            {
                results.Add(r);
            }
        })
        { Name = name, IsBackground = true };
        t.Start();
        return t;
    }

    private void OnEvent(SlotEvent ev)
    {
        if (ev != SlotEvent.FeaturesAccepted)
        {
            return;
        }

        // Before the driver sees FEATURES_OK acknowledged: our used rings are zeroed, so it never reads
        // a stale used idx from an earlier session.
        WindowAccessor w = _end.Window.Accessor;
        bool eventIdx = (_slot!.NegotiatedFeatures & VirtioFeatures.EventIdx) != 0;
        _toDevice = new DeviceQueue(w, _slot.Queues[0], _geometry.Buffers, eventIdx, _end.PeerDoorbell(ToDeviceVector), ToDeviceStats);
        _toDriver = new DeviceQueue(w, _slot.Queues[1], _geometry.Buffers, eventIdx, _end.PeerDoorbell(ToDriverVector), ToDriverStats);
        _toDevice.Reset();
        _toDriver.Reset();
    }

    private RingTestResult Consume(DeviceQueue q, CancellationToken cancel)
    {
        WindowAccessor w = _end.Window.Accessor;
        EventFdDoorbell bell = _end.LocalDoorbell(ToDeviceVector);
        Span<BufferSegment> segs = stackalloc BufferSegment[4];
        ulong seq = 0;
        ulong bytes = 0;
        long start = 0;
        int idle = 0;
        while (seq < _config.Count)
        {
            int n = 0;
            while (n < Budget && q.TryPop(segs, out DescriptorChain chain))
            {
                if (start == 0)
                {
                    start = Stopwatch.GetTimestamp();
                }

                if (chain.Truncated || chain.SegmentCount != 1 || chain.ReadableLength != _config.Payload ||
                    !RingTestPayload.Verify(w.Bytes(segs[0].Offset, (int)segs[0].Length), seq))
                {
                    return new RingTestResult("to_device", seq, bytes, Elapsed(start), $"buffer {seq}: content or length mismatch (len {chain.ReadableLength})");
                }

                q.PushUsed(chain.Head, 0);
                q.CountConsumed(chain.ReadableLength);
                bytes += chain.ReadableLength;
                seq++;
                n++;
            }

            q.Publish();
            if (q.Fault != RingErrorKind.None)
            {
                return new RingTestResult("to_device", seq, bytes, Elapsed(start), $"queue quarantined: {q.Fault.Label()}");
            }

            if (n != 0)
            {
                idle = 0;
            }
            else if (Idle(ref idle) && !q.EnableNotifications())
            {
                Sleep(bell, q.Stats, cancel);
            }
        }

        // Let the last completions reach the driver before we report.
        return new RingTestResult("to_device", seq, bytes, Elapsed(start), null);
    }

    private RingTestResult Produce(DeviceQueue q, CancellationToken cancel)
    {
        WindowAccessor w = _end.Window.Accessor;
        EventFdDoorbell bell = _end.LocalDoorbell(ToDriverVector);
        Span<BufferSegment> segs = stackalloc BufferSegment[4];
        ulong seq = 0;
        ulong bytes = 0;
        long start = 0;
        int idle = 0;
        while (seq < _config.Count)
        {
            int n = 0;
            while (n < Budget && seq < _config.Count && q.TryPop(segs, out DescriptorChain chain))
            {
                if (start == 0)
                {
                    start = Stopwatch.GetTimestamp();
                }

                if (chain.Truncated || chain.SegmentCount != 1 || chain.ReadableLength != 0 || segs[0].Length < _config.Payload)
                {
                    return new RingTestResult("to_driver", seq, bytes, Elapsed(start), $"posted buffer {seq} is unusable");
                }

                RingTestPayload.Write(w.Bytes(segs[0].Offset, (int)_config.Payload), seq);
                q.PushUsed(chain.Head, _config.Payload);
                bytes += _config.Payload;
                seq++;
                n++;
            }

            q.Publish();
            if (q.Fault != RingErrorKind.None)
            {
                return new RingTestResult("to_driver", seq, bytes, Elapsed(start), $"queue quarantined: {q.Fault.Label()}");
            }

            if (n != 0)
            {
                idle = 0;
            }
            else if (Idle(ref idle) && !q.EnableNotifications())
            {
                Sleep(bell, q.Stats, cancel);
            }
        }

        return new RingTestResult("to_driver", seq, bytes, Elapsed(start), null);
    }

    /// <summary>
    /// Counts idle polls; true once the spin budget is spent (then the caller arms notifications and
    /// sleeps). A short spin saves the eventfd round trip when the peer is only a batch behind.
    /// </summary>
    internal static bool Idle(ref int idle)
    {
        if (++idle < SpinPolls)
        {
            if ((idle & 7) == 0)
            {
                Thread.Yield(); // on an oversubscribed machine, let the thread we wait for run
            }
            else
            {
                Thread.SpinWait(30);
            }

            return false;
        }

        idle = 0;
        return true;
    }

    internal static void Sleep(EventFdDoorbell bell, QueueStats stats, CancellationToken cancel)
    {
        while (!bell.Wait(100))
        {
            cancel.ThrowIfCancellationRequested();
        }

        bell.Drain();
        stats.DoorbellsReceived++;
    }

    internal static TimeSpan Elapsed(long start) => start == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(start);
}
