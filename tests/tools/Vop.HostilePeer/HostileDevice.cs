using Vop.Links.Doorbells;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Windows;
using Vop.Netstack.Virtio;

namespace Vop.HostilePeer;

/// <summary>Where the hostile device side places its net device's queues and which vectors it names.</summary>
internal enum HostileLayout
{
    Normal,             // what vop's own device side writes
    DupVector,          // both queues on vector 1: two pumps drain one eventfd
    ZeroVector,         // receiveq on vector 0, the control vector
    QueueOverHeader,    // receiveq's rings start at 0: the driver's descriptors land on the header
    QueueOverState,     // ... at 0x40: on both side state blocks and the doorbell counters
    QueueOverTable,     // ... at the device table: on the slot's own entries and driver status
    QueueOverBuffers,   // ... at the start of the buffer region
}

/// <summary>
/// A device side that plays by the wire format only as far as it wants to: lays the window out with one
/// net device slot (features and config as vop's net device offers them) whose queue entries follow
/// <see cref="HostileLayout"/>, keeps its state block beating and answers the driver's status handshake.
/// It never moves a packet. Used from one control thread.
/// </summary>
internal sealed class HostileDevice
{
    private const ushort QueueSize = 256;
    private const ulong Line = 64;
    private static readonly byte[] Mac = [0x52, 0x54, 0x00, 0x6f, 0x70, 0x01];

    private readonly WindowAccessor _window;
    private readonly HostileLayout _layout;
    private SideStateBlock? _state;
    private DeviceSlot? _slot;

    public HostileDevice(WindowAccessor window, HostileLayout layout)
    {
        _window = window;
        _layout = layout;
    }

    /// <summary>False once the window shrank under us: then nothing past the first page is touched.</summary>
    public bool WindowIntact { get; set; } = true;

    public int Layouts { get; private set; }

    public int DriverOks { get; private set; }

    public int Resets { get; private set; }

    public int Refusals { get; private set; }

    public static HostileLayout ParseLayout(string text) => text switch
    {
        "normal" => HostileLayout.Normal,
        "dup-vector" => HostileLayout.DupVector,
        "zero-vector" => HostileLayout.ZeroVector,
        "queue-over-header" => HostileLayout.QueueOverHeader,
        "queue-over-state" => HostileLayout.QueueOverState,
        "queue-over-table" => HostileLayout.QueueOverTable,
        "queue-over-buffers" => HostileLayout.QueueOverBuffers,
        _ => throw new ArgumentException($"--layout: '{text}' is not normal, dup-vector, zero-vector, queue-over-header, queue-over-state, queue-over-table or queue-over-buffers"),
    };

    /// <summary>Writes header, device slot and state block afresh (also after a driver left, as vop's device side does).</summary>
    public void LayOut()
    {
        WindowAccessor w = _window;
        WindowGeometry geometry = WindowHeader.Initialize(w, 4096 + (2 * RingAreaAllocator.BytesFor(QueueSize)));
        var rings = new RingAreaAllocator(geometry);
        SplitRingLayout rx = rings.Allocate(QueueSize);
        SplitRingLayout tx = rings.Allocate(QueueSize);
        ushort rxVector = 1, txVector = 2;
        switch (_layout)
        {
            case HostileLayout.DupVector:
                txVector = 1;
                break;
            case HostileLayout.ZeroVector:
                rxVector = 0;
                break;
            case HostileLayout.QueueOverHeader:
                rx = RingAt(WindowLayout.HeaderOffset);
                break;
            case HostileLayout.QueueOverState:
                rx = RingAt(WindowLayout.DeviceSideState);
                break;
            case HostileLayout.QueueOverTable:
                rx = RingAt(WindowLayout.TableOffset);
                break;
            case HostileLayout.QueueOverBuffers:
                rx = RingAt(geometry.Buffers.Offset);
                break;
        }

        _slot = new DeviceSlot(w, 0, DeviceType.Net, NetFeatures.Offered, [rx, tx], [rxVector, txVector]);
        _slot.Insert(new NetConfigSpace(Mac, true, 1500).Encode());
        _state ??= new SideStateBlock(w, WindowLayout.DeviceSideState);
        _state.Start();
        Layouts++;
    }

    /// <summary>
    /// The control loop, as vop's device side runs it: wakes on the control vector or every 100 ms, lays
    /// the window out afresh when <paramref name="driverLeft"/> says so, answers the handshake and beats.
    /// <paramref name="tick"/> runs first on every round (scheduled attacks).
    /// </summary>
    public void Serve(EventFdDoorbell control, Func<bool> driverLeft, Action tick, CancellationToken cancel)
    {
        const int HeartbeatMs = 100;
        long nextBeat = 0;
        while (!cancel.IsCancellationRequested)
        {
            if (control.Wait(HeartbeatMs))
            {
                control.Drain();
            }

            tick();
            if (WindowIntact)
            {
                if (driverLeft())
                {
                    LayOut();
                }

                Poll();
            }

            long now = Environment.TickCount64;
            if (now >= nextBeat)
            {
                Beat();
                nextBeat = now + HeartbeatMs;
            }
        }
    }

    /// <summary>Answers one round of the driver's status handshake, if it wrote anything.</summary>
    public void Poll()
    {
        switch (_slot!.Poll())
        {
            case SlotEvent.DriverOk:
                DriverOks++;
                break;
            case SlotEvent.Reset:
                Resets++;
                break;
            case SlotEvent.FeaturesRefused:
            case SlotEvent.Failed:
                Refusals++;
                break;
        }
    }

    /// <summary>Heartbeat; touches only the state block (first page), so it is safe after the window shrank.</summary>
    public void Beat() => _state?.Beat();

    public void Stop()
    {
        if (WindowIntact)
        {
            _slot?.Remove();
        }

        _state?.Stop();
    }

    /// <summary>A queue whose three parts sit back to back from <paramref name="start"/>, aligned as the allocator aligns them.</summary>
    private static SplitRingLayout RingAt(ulong start)
    {
        static ulong Align(ulong n) => (n + Line - 1) & ~(Line - 1);
        ulong avail = start + Align(SplitRingLayout.DescBytes(QueueSize));
        ulong used = avail + Align(SplitRingLayout.AvailBytes(QueueSize));
        return new SplitRingLayout(QueueSize, start, avail, used);
    }
}
