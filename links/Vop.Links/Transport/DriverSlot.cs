using Vop.Links.Rings;
using Vop.Links.Windows;

namespace Vop.Links.Transport;

/// <summary>
/// A device discovered by the driver side in one slot of the device table. Everything the device side
/// wrote is read once and validated at discovery (queue placement, sizes, config length); the driver
/// then walks the status sequence, writing its own fields only.
/// </summary>
public sealed class DriverSlot
{
    private readonly WindowAccessor _window;
    private readonly ulong _slot;
    private uint _status;
    private uint _seq;

    private DriverSlot(in WindowAccessor window, int index, DeviceType type, ulong features, uint generation, SplitRingLayout[] queues, ushort[] vectors, byte[] config)
    {
        _window = window;
        _slot = WindowLayout.Slot(index);
        Index = index;
        Type = type;
        DeviceFeatures = features;
        DeviceGeneration = generation;
        Queues = queues;
        Vectors = vectors;
        Config = config;
        _seq = window.ReadU32(_slot + WindowLayout.SlotStatusSeq);
    }

    public int Index { get; }

    public DeviceType Type { get; }

    public ulong DeviceFeatures { get; }

    /// <summary>The device's generation at discovery; a change means it was re-inserted or reset.</summary>
    public uint DeviceGeneration { get; }

    public IReadOnlyList<SplitRingLayout> Queues { get; }

    public IReadOnlyList<ushort> Vectors { get; }

    /// <summary>Config space snapshot taken at discovery (consistent under the generation counter).</summary>
    public byte[] Config { get; private set; }

    public ulong NegotiatedFeatures { get; private set; }

    /// <summary>
    /// Reads slot <paramref name="index"/>. Null with a null error when the slot is empty; null with an
    /// error line when the device side wrote something invalid.
    /// </summary>
    public static DriverSlot? TryDiscover(in WindowAccessor w, in WindowGeometry geometry, int index, int maxVector, out string? error)
    {
        error = null;
        ulong slot = WindowLayout.Slot(index);
        uint type = w.ReadU32Acquire(slot + WindowLayout.SlotDeviceType);
        if (type == 0)
        {
            return null;
        }

        int queueCount = w.ReadU16(slot + WindowLayout.SlotQueueCount);
        int configSize = w.ReadU16(slot + WindowLayout.SlotConfigSize);
        ulong features = w.ReadU64(slot + WindowLayout.SlotDeviceFeatures);
        uint generation = w.ReadU32(slot + WindowLayout.SlotDeviceGeneration);
        if (queueCount is 0 or > WindowLayout.MaxQueuesPerDevice)
        {
            error = $"slot {index}: queue count {queueCount} is outside 1..{WindowLayout.MaxQueuesPerDevice}";
            return null;
        }

        if (configSize > WindowLayout.MaxConfigSize)
        {
            error = $"slot {index}: config size {configSize} exceeds {WindowLayout.MaxConfigSize}";
            return null;
        }

        var queues = new SplitRingLayout[queueCount];
        var vectors = new ushort[queueCount];
        for (int q = 0; q < queueCount; q++)
        {
            ulong e = WindowLayout.QueueEntry(index, q);
            var layout = new SplitRingLayout(
                w.ReadU16(e + WindowLayout.QueueSize),
                w.ReadU64(e + WindowLayout.QueueDescOffset),
                w.ReadU64(e + WindowLayout.QueueAvailOffset),
                w.ReadU64(e + WindowLayout.QueueUsedOffset));
            string? why = layout.Validate(w, geometry.Buffers);
            if (why is not null)
            {
                error = $"slot {index} queue {q}: {why}";
                return null;
            }

            for (int p = 0; p < q; p++)
            {
                if (Overlap(layout, queues[p]))
                {
                    error = $"slot {index} queue {q} overlaps queue {p}";
                    return null;
                }
            }

            vectors[q] = w.ReadU16(e + WindowLayout.QueueVector);
            if (vectors[q] >= maxVector)
            {
                error = $"slot {index} queue {q}: vector {vectors[q]} is not below {maxVector}";
                return null;
            }

            queues[q] = layout;
        }

        var result = new DriverSlot(w, index, (DeviceType)type, features, generation, queues, vectors, new byte[configSize]);
        if (!result.RefreshConfig())
        {
            error = $"slot {index}: config space kept changing while being read";
            return null;
        }

        return result;
    }

    private static bool Overlap(SplitRingLayout a, SplitRingLayout b)
    {
        static ulong Start(SplitRingLayout l) => Math.Min(l.DescOffset, Math.Min(l.AvailOffset, l.UsedOffset));
        static ulong End(SplitRingLayout l) => Math.Max(
            l.DescOffset + SplitRingLayout.DescBytes(l.Size),
            Math.Max(l.AvailOffset + SplitRingLayout.AvailBytes(l.Size), l.UsedOffset + SplitRingLayout.UsedBytes(l.Size)));
        return Start(a) < End(b) && Start(b) < End(a);
    }

    /// <summary>Re-reads config space until two generation reads agree (virtio 2.5.1). False after 100 tries.</summary>
    public bool RefreshConfig()
    {
        ulong g = _slot + WindowLayout.SlotConfigGeneration;
        for (int attempt = 0; attempt < 100; attempt++)
        {
            uint before = _window.ReadU32Acquire(g);
            if ((before & 1) != 0)
            {
                Thread.Yield();
                continue;
            }

            _window.Bytes(_slot + WindowLayout.SlotConfig, Config.Length).CopyTo(Config);
            if (_window.ReadU32Acquire(g) == before)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>What the device side last accepted, plus NEEDS_RESET.</summary>
    public VirtioStatus DeviceStatus => (VirtioStatus)_window.ReadU32Acquire(_slot + WindowLayout.SlotDeviceStatus);

    /// <summary>True once the device side has processed our last status write.</summary>
    public bool Acknowledged => _window.ReadU32Acquire(_slot + WindowLayout.SlotStatusAck) == _seq;

    /// <summary>True when the device side asks for a reset (quarantine) or no longer holds the device we discovered.</summary>
    public bool NeedsReset =>
        (DeviceStatus & VirtioStatus.NeedsReset) != 0 ||
        _window.ReadU32Acquire(_slot + WindowLayout.SlotDeviceType) != (uint)Type;

    /// <summary>Writes a new driver status and bumps the sequence the device acknowledges.</summary>
    public void WriteStatus(VirtioStatus status)
    {
        _status = (uint)status;
        _window.WriteU32(_slot + WindowLayout.SlotDriverStatus, _status);
        _window.WriteU32Release(_slot + WindowLayout.SlotStatusSeq, ++_seq);
    }

    public VirtioStatus Status => (VirtioStatus)_status;

    /// <summary>ACKNOWLEDGE | DRIVER, features = offered ∩ wanted (VERSION_1 required), then FEATURES_OK.</summary>
    public bool BeginNegotiation(ulong wanted)
    {
        ulong accepted = DeviceFeatures & wanted;
        if ((accepted & VirtioFeatures.Version1) == 0)
        {
            WriteStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.Failed);
            return false;
        }

        NegotiatedFeatures = accepted;
        _window.WriteU64(_slot + WindowLayout.SlotDriverFeatures, accepted);
        WriteStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk);
        return true;
    }

    /// <summary>After the acknowledgement: did the device keep FEATURES_OK (virtio 3.1.1 step 6)?</summary>
    public bool FeaturesAccepted => (DeviceStatus & VirtioStatus.FeaturesOk) != 0;

    public void SetDriverOk() => WriteStatus(Status | VirtioStatus.DriverOk);

    public void Reset() => WriteStatus(VirtioStatus.Reset);

    /// <summary>
    /// Waits for the device side to acknowledge the last status write, ringing <paramref name="kick"/>
    /// (the control vector) first and polling every millisecond. Control path only.
    /// </summary>
    public bool WaitAcknowledged(TimeSpan timeout, Action? kick, CancellationToken cancel = default)
    {
        kick?.Invoke();
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (!Acknowledged)
        {
            if (Environment.TickCount64 > deadline || cancel.IsCancellationRequested)
            {
                return false;
            }

            Thread.Sleep(1);
        }

        return true;
    }
}
