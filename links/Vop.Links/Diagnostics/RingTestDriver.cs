using System.Diagnostics;
using Vop.Links.Doorbells;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Windows;
using Vop.Links.Stats;

namespace Vop.Links.Diagnostics;

/// <summary>
/// Driver side of the ring-test device: discovers it, negotiates EVENT_IDX, posts buffers and checks
/// everything that comes back (used ids, lengths, content in sequence).
/// </summary>
public sealed class RingTestDriver
{
    private readonly ILinkEnd _end;
    private readonly DriverSlot _slot;
    private readonly DriverQueue _toDevice;
    private readonly DriverQueue _toDriver;
    private readonly ulong _toDeviceBuffers;
    private readonly ulong _toDriverBuffers;
    private readonly uint _bufferSize;

    private RingTestDriver(ILinkEnd end, DriverSlot slot, RingTestConfig config, DriverQueue toDevice, DriverQueue toDriver, ulong txBuffers, ulong rxBuffers, uint bufferSize)
    {
        _end = end;
        _slot = slot;
        Config = config;
        _toDevice = toDevice;
        _toDriver = toDriver;
        _toDeviceBuffers = txBuffers;
        _toDriverBuffers = rxBuffers;
        _bufferSize = bufferSize;
    }

    public RingTestConfig Config { get; }

    public DriverSlot Slot => _slot;

    public QueueStats ToDeviceStats => _toDevice.Stats;

    public QueueStats ToDriverStats => _toDriver.Stats;

    /// <summary>Waits for the device side's window and device, negotiates, posts nothing yet, sets DRIVER_OK.</summary>
    public static RingTestDriver Attach(ILinkEnd end, CancellationToken cancel, bool eventIdx = true)
    {
        WindowAccessor w = end.Window.Accessor;
        WindowGeometry geometry;
        DriverSlot? slot;
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            if (WindowHeader.TryRead(w, out geometry) is null)
            {
                slot = DriverSlot.TryDiscover(w, geometry, 0, end.VectorCount, out string? error);
                if (error is not null)
                {
                    throw new InvalidDataException(error);
                }

                if (slot is not null && slot.Type == DeviceType.RingTest)
                {
                    break;
                }
            }

            Thread.Sleep(10);
        }

        new SideStateBlock(w, WindowLayout.DriverSideState).Start();
        RingTestConfig config = RingTestConfig.Decode(slot.Config);
        Action kick = end.PeerDoorbell(0).Ring;
        slot.Reset();
        if (!slot.WaitAcknowledged(TimeSpan.FromSeconds(5), kick, cancel))
        {
            throw new TimeoutException("device side did not acknowledge reset");
        }

        ulong wanted = VirtioFeatures.Version1 | (eventIdx ? VirtioFeatures.EventIdx : 0);
        if (!slot.BeginNegotiation(wanted) || !slot.WaitAcknowledged(TimeSpan.FromSeconds(5), kick, cancel) || !slot.FeaturesAccepted)
        {
            throw new InvalidDataException("device side refused the feature set");
        }

        bool useEventIdx = (slot.NegotiatedFeatures & VirtioFeatures.EventIdx) != 0;
        uint bufferSize = Math.Max(config.Payload, 64);
        var carver = new BufferCarver(geometry.Buffers);
        ulong tx = carver.Carve(slot.Queues[0].Size, bufferSize);
        ulong rx = carver.Carve(slot.Queues[1].Size, bufferSize);
        var toDevice = new DriverQueue(w, slot.Queues[0], geometry.Buffers, useEventIdx, end.PeerDoorbell(slot.Vectors[0]), new QueueStats("tx"));
        var toDriver = new DriverQueue(w, slot.Queues[1], geometry.Buffers, useEventIdx, end.PeerDoorbell(slot.Vectors[1]), new QueueStats("rx"));
        slot.SetDriverOk();
        if (!slot.WaitAcknowledged(TimeSpan.FromSeconds(5), kick, cancel) || (slot.DeviceStatus & VirtioStatus.DriverOk) == 0)
        {
            throw new InvalidDataException("device side did not accept DRIVER_OK");
        }

        return new RingTestDriver(end, slot, config, toDevice, toDriver, tx, rx, bufferSize);
    }

    /// <summary>Runs the directions the device configured; returns one result per direction.</summary>
    public IReadOnlyList<RingTestResult> Run(CancellationToken cancel)
    {
        var results = new List<RingTestResult>();
        var threads = new List<Thread>();
        if ((Config.Directions & RingTestDirections.ToDevice) != 0)
        {
            threads.Add(Start("ring-test-send", () => Send(cancel), results));
        }

        if ((Config.Directions & RingTestDirections.ToDriver) != 0)
        {
            threads.Add(Start("ring-test-receive", () => Receive(cancel), results));
        }

        foreach (Thread t in threads)
        {
            t.Join();
        }

        return results;
    }

    private static Thread Start(string name, Func<RingTestResult> body, List<RingTestResult> results)
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

    private RingTestResult Send(CancellationToken cancel)
    {
        DriverQueue q = _toDevice;
        WindowAccessor w = _end.Window.Accessor;
        EventFdDoorbell bell = _end.LocalDoorbell(_slot.Vectors[0]);
        int size = q.Size;
        ulong stride = BufferCarver.Stride(_bufferSize);
        var free = new Stack<ushort>(size);
        for (int i = size - 1; i >= 0; i--)
        {
            free.Push((ushort)i);
        }

        var bufferOfHead = new ushort[size];
        ulong count = Config.Count;
        uint payload = Config.Payload;
        ulong sent = 0;
        ulong done = 0;
        long start = Stopwatch.GetTimestamp();
        int idle = 0;
        while (done < count)
        {
            bool progress = false;
            while (q.TryReap(out UsedElement used))
            {
                if (!used.LengthValid || used.Length != 0)
                {
                    return new RingTestResult("to_device", done, done * payload, RingTestDevice.Elapsed(start), $"used length {used.Length} for a device-readable buffer");
                }

                free.Push(bufferOfHead[used.Head]);
                done++;
                progress = true;
            }

            q.FlushReapStats();
            while (sent < count && free.Count > 0)
            {
                ushort buffer = free.Pop();
                ulong offset = _toDeviceBuffers + (buffer * stride);
                RingTestPayload.Write(w.Bytes(offset, (int)payload), sent);
                if (!q.TryAdd(new BufferSegment(offset, payload, false), out ushort head))
                {
                    free.Push(buffer);
                    break;
                }

                bufferOfHead[head] = buffer;
                sent++;
                progress = true;
            }

            q.Publish();
            if (q.Fault != RingErrorKind.None)
            {
                return new RingTestResult("to_device", done, done * payload, RingTestDevice.Elapsed(start), $"queue quarantined: {q.Fault.Label()}");
            }

            if (progress)
            {
                idle = 0;
            }
            else if (RingTestDevice.Idle(ref idle) && !q.EnableInterrupts())
            {
                RingTestDevice.Sleep(bell, q.Stats, cancel);
            }
        }

        return new RingTestResult("to_device", done, done * payload, RingTestDevice.Elapsed(start), null);
    }

    private RingTestResult Receive(CancellationToken cancel)
    {
        DriverQueue q = _toDriver;
        WindowAccessor w = _end.Window.Accessor;
        EventFdDoorbell bell = _end.LocalDoorbell(_slot.Vectors[1]);
        int size = q.Size;
        ulong stride = BufferCarver.Stride(_bufferSize);
        var free = new Stack<ushort>(size);
        for (int i = size - 1; i >= 0; i--)
        {
            free.Push((ushort)i);
        }

        var bufferOfHead = new ushort[size];
        ulong count = Config.Count;
        uint payload = Config.Payload;
        ulong posted = 0;
        ulong seq = 0;
        long start = Stopwatch.GetTimestamp();
        int idle = 0;
        while (seq < count)
        {
            bool progress = false;
            while (posted < count && free.Count > 0)
            {
                ushort buffer = free.Pop();
                if (!q.TryAdd(new BufferSegment(_toDriverBuffers + (buffer * stride), _bufferSize, true), out ushort head))
                {
                    free.Push(buffer);
                    break;
                }

                bufferOfHead[head] = buffer;
                posted++;
                progress = true;
            }

            q.Publish();
            while (q.TryReap(out UsedElement used))
            {
                ushort buffer = bufferOfHead[used.Head];
                if (!used.LengthValid || used.Length != payload ||
                    !RingTestPayload.Verify(w.Bytes(_toDriverBuffers + (buffer * stride), (int)payload), seq))
                {
                    return new RingTestResult("to_driver", seq, seq * payload, RingTestDevice.Elapsed(start), $"buffer {seq}: content or length mismatch (len {used.Length})");
                }

                free.Push(buffer);
                seq++;
                progress = true;
            }

            q.FlushReapStats();
            if (q.Fault != RingErrorKind.None)
            {
                return new RingTestResult("to_driver", seq, seq * payload, RingTestDevice.Elapsed(start), $"queue quarantined: {q.Fault.Label()}");
            }

            if (progress)
            {
                idle = 0;
            }
            else if (RingTestDevice.Idle(ref idle) && !q.EnableInterrupts())
            {
                RingTestDevice.Sleep(bell, q.Stats, cancel);
            }
        }

        return new RingTestResult("to_driver", seq, seq * payload, RingTestDevice.Elapsed(start), null);
    }
}
