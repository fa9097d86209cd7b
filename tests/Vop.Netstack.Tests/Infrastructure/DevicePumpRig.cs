using Vop.Links.Devices;
using Vop.Links.Doorbells;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Windows;
using Vop.Links.Stats;
using Vop.Netstack.Capture;
using Vop.Netstack.Device;

namespace Vop.Netstack.Tests.Infrastructure;

/// <summary>
/// The real device-side net pump between a <see cref="FramePipe"/> (its TAP) and a guarded in-memory
/// window (PROT_NONE pages on both sides: a touch outside the window kills the test run) holding real
/// split rings. The test plays the driver with real <see cref="DriverQueue"/>s and may post anything a
/// hostile driver could. The buffer region starts filled with <see cref="Canary"/>, so bytes the pump
/// was not entitled to write can be checked.
/// </summary>
internal sealed class DevicePumpRig : IDisposable
{
    public const ushort QueueSize = 64;
    public const ulong BufferBase = 0x10000;
    public const byte Canary = 0xA5;
    public static readonly byte[] Mac = [0x02, 0, 0, 0, 0, 0x01];

    private static readonly SplitRingLayout s_rxLayout = new(QueueSize, 0x1000, 0x2000, 0x3000);
    private static readonly SplitRingLayout s_txLayout = new(QueueSize, 0x4000, 0x5000, 0x6000);

    private readonly EventFdDoorbell _kickRx = new();
    private readonly EventFdDoorbell _kickTx = new();
    private readonly EventFdDoorbell _interruptRx = new();
    private readonly EventFdDoorbell _interruptTx = new();
    private readonly Dictionary<ushort, BufferSegment[]> _rxPosted = [];
    private readonly ulong _windowSize;
    private ulong _next = BufferBase;

    // tun: TUN mode: the pipe plays a TUN and the pump's end uses these link addresses.
    public DevicePumpRig(ulong features, int mtu = 1500, ulong windowSize = 4 << 20, Tun.TunAddresses? tun = null)
    {
        _windowSize = windowSize;
        Window = SharedWindow.CreateGuarded(windowSize);
        W = Window.Accessor;
        W.Bytes(BufferBase, (int)(windowSize - BufferBase)).Fill(Canary);
        var buffers = new BufferRegion(BufferBase, windowSize - BufferBase);
        bool eventIdx = (features & VirtioFeatures.EventIdx) != 0;
        DeviceRx = new DeviceQueue(W, s_rxLayout, buffers, eventIdx, _interruptRx, new QueueStats("rx0", NetDropReasonNames.All));
        DeviceTx = new DeviceQueue(W, s_txLayout, buffers, eventIdx, _interruptTx, new QueueStats("tx0", NetDropReasonNames.All));
        DeviceRx.Reset();
        DeviceTx.Reset();
        Rx = new DriverQueue(W, s_rxLayout, buffers, eventIdx, _kickRx, new QueueStats("driver-rx0"));
        Tx = new DriverQueue(W, s_txLayout, buffers, eventIdx, _kickTx, new QueueStats("driver-tx0"));
        Pipe = new FramePipe("pipe-dev", tun);
        var set = new DeviceQueueSet(W, [DeviceRx, DeviceTx], [_kickRx, _kickTx], features);
        Pump = new NetDevicePump(new NetDeviceOptions("net0", "pipe-dev", Mac, mtu, QueueSize), Pipe.Tap, set, Capture);
    }

    public SharedWindow Window { get; }

    public WindowAccessor W { get; }

    public FramePipe Pipe { get; }

    public CaptureRing Capture { get; } = new(1 << 20);

    /// <summary>The pump's queues (their Stats are what the exporter would publish).</summary>
    public DeviceQueue DeviceRx { get; }

    public DeviceQueue DeviceTx { get; }

    /// <summary>The test's driver queues.</summary>
    public DriverQueue Rx { get; }

    public DriverQueue Tx { get; }

    public NetDevicePump Pump { get; }

    public QueueStats RxStats => DeviceRx.Stats;

    public QueueStats TxStats => DeviceTx.Stats;

    public DevicePumpRig Start()
    {
        Pump.Start();
        return this;
    }

    /// <summary>A fresh piece of the buffer region (64-byte aligned, wrapping round when the region is used up).</summary>
    public ulong Allocate(uint length)
    {
        ulong at = (_next + 63) & ~63UL;
        if (at + length > _windowSize)
        {
            at = BufferBase;
        }

        _next = at + length;
        return at;
    }

    /// <summary>Posts one device-writable receive chain of the given segment lengths and publishes it.</summary>
    public ushort PostRx(params uint[] lengths)
    {
        BufferSegment[] segs = [.. lengths.Select(l => new BufferSegment(Allocate(l), l, true))];
        return PostRx(segs);
    }

    public ushort PostRx(BufferSegment[] segs, bool publish = true)
    {
        Assert.True(Rx.TryAdd(segs, out ushort head), "receive queue full");
        _rxPosted[head] = segs;
        if (publish)
        {
            Rx.Publish();
        }

        return head;
    }

    public BufferSegment[] RxSegments(ushort head) => _rxPosted[head];

    /// <summary>Waits for the next used receive entry; returns it with the bytes the device wrote into the chain.</summary>
    public (UsedElement Used, byte[] Bytes) ReapRx()
    {
        UsedElement used = default;
        Wait.Until(() => Rx.TryReap(out used), "a used receive buffer");
        Rx.FlushReapStats();
        return (used, Gather(_rxPosted[used.Head], used.Length));
    }

    /// <summary>Posts <paramref name="message"/> for transmission, cut into descriptors at <paramref name="cuts"/> (byte offsets).</summary>
    public ushort PostTx(byte[] message, params int[] cuts)
    {
        var segs = new List<BufferSegment>();
        int from = 0;
        foreach (int to in cuts.Append(message.Length))
        {
            ulong at = Allocate((uint)(to - from));
            message.AsSpan(from, to - from).CopyTo(W.Bytes(at, to - from));
            segs.Add(new BufferSegment(at, (uint)(to - from), false));
            from = to;
        }

        Assert.True(Tx.TryAdd(segs.ToArray(), out ushort head), "transmit queue full");
        Tx.Publish();
        return head;
    }

    /// <summary>Waits until the device has completed every posted transmit chain.</summary>
    public void ReapAllTx()
    {
        Wait.Until(
            () =>
            {
                while (Tx.TryReap(out _))
                {
                }

                return Tx.Outstanding == 0;
            },
            "transmit completions");
        Tx.FlushReapStats();
    }

    public byte[] Gather(ReadOnlySpan<BufferSegment> segs, uint length)
    {
        var b = new byte[length];
        int got = 0;
        foreach (BufferSegment s in segs)
        {
            int take = (int)Math.Min(s.Length, length - (uint)got);
            W.Bytes(s.Offset, take).CopyTo(b.AsSpan(got));
            got += take;
        }

        Assert.Equal((int)length, got);
        return b;
    }

    /// <summary>True when every byte of <paramref name="s"/> from <paramref name="from"/> on still holds the canary.</summary>
    public bool Untouched(BufferSegment s, int from = 0) =>
        !W.Bytes(s.Offset + (ulong)from, (int)s.Length - from).ContainsAnyExcept(Canary);

    public void Dispose()
    {
        Pump.Stop();
        Pipe.Dispose();
        _kickRx.Dispose();
        _kickTx.Dispose();
        _interruptRx.Dispose();
        _interruptTx.Dispose();
        Window.Dispose();
    }
}
