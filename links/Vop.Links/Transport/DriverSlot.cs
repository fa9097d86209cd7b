using Vop.Links.Rings;
using Vop.Links.Windows;

namespace Vop.Links.Transport;

/// <summary>
/// A device discovered by the driver side in one slot of the device table. Everything the device side
/// wrote is read once and validated at discovery (queue placement inside the ring area, sizes, vectors,
/// config length; docs/wire-format.md "Validation"); the driver then walks the status sequence, writing
/// its own fields only. Conflicts between devices are CheckDisjoint's.
/// </summary>
public sealed class DriverSlot
{
    // The fixed areas below the ring area: ring writes there (avail by us, used by the device) would
    // clobber them. Named in the refusal so the peer's bug is obvious.
    private static readonly (string Name, ulong Start, ulong Length)[] s_fixedAreas =
    [
        ("window header", WindowLayout.HeaderOffset, WindowLayout.DeviceSideState - WindowLayout.HeaderOffset),
        ("side state blocks", WindowLayout.DeviceSideState, WindowLayout.DriverSideState + 0x40 - WindowLayout.DeviceSideState),
        ("doorbell counters", WindowLayout.DeviceDoorbells, WindowLayout.DriverDoorbells + (WindowLayout.DoorbellCounters * 4UL) - WindowLayout.DeviceDoorbells),
        ("device table", WindowLayout.TableOffset, WindowLayout.TableEnd - WindowLayout.TableOffset),
    ];

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
            string? why = layout.Validate(w, geometry.Buffers) ?? OutsideRingArea(layout, geometry);
            if (why is not null)
            {
                error = $"slot {index} queue {q}: {why}";
                return null;
            }

            ushort vector = w.ReadU16(e + WindowLayout.QueueVector);
            why = CheckVector(vector, maxVector);
            if (why is not null)
            {
                error = $"slot {index} queue {q}: {why}";
                return null;
            }

            for (int p = 0; p < q; p++)
            {
                // A shared vector would make the second epoll_ctl(ADD) of its eventfd fail (EEXIST), and
                // two pumps on one eventfd would steal each other's wake-ups.
                if (vectors[p] == vector)
                {
                    error = $"slot {index} queue {q}: vector {vector} is also queue {p}'s";
                    return null;
                }

                if (Overlap(layout, queues[p], out int mine, out int theirs))
                {
                    error = $"slot {index} queue {q}: {SplitRingLayout.PartName(mine)} at 0x{layout.Part(mine).Start:x} overlaps " +
                        $"queue {p}'s {SplitRingLayout.PartName(theirs)} at 0x{queues[p].Part(theirs).Start:x}";
                    return null;
                }
            }

            queues[q] = layout;
            vectors[q] = vector;
        }

        var result = new DriverSlot(w, index, (DeviceType)type, features, generation, queues, vectors, new byte[configSize]);
        if (!result.RefreshConfig())
        {
            error = $"slot {index}: config space kept changing while being read";
            return null;
        }

        return result;
    }

    /// <summary>
    /// The checks no single slot can make: across every queue of every device the driver takes in one
    /// session, no vector is used twice and no two ring parts share a byte. Null when disjoint, else one
    /// line naming both queues. Call after TryDiscover has accepted each slot.
    /// </summary>
    public static string? CheckDisjoint(IReadOnlyList<DriverSlot> slots)
    {
        var vectorOwner = new Dictionary<ushort, (int Slot, int Queue)>();
        var parts = new List<(ulong Start, ulong Length, int Position, int Queue, int Part)>();
        for (int s = 0; s < slots.Count; s++)
        {
            DriverSlot slot = slots[s];
            for (int q = 0; q < slot.Queues.Count; q++)
            {
                ushort v = slot.Vectors[q];
                if (!vectorOwner.TryAdd(v, (slot.Index, q)))
                {
                    (int os, int oq) = vectorOwner[v];
                    return $"slot {slot.Index} queue {q}: vector {v} is also slot {os} queue {oq}'s";
                }

                for (int p = 0; p < SplitRingLayout.PartCount; p++)
                {
                    (ulong start, ulong length) = slot.Queues[q].Part(p);
                    parts.Add((start, length, s, q, p));
                }
            }
        }

        // Sorted by start, the parts are pairwise disjoint iff each neighbour pair is: the first overlap
        // found is with the part reaching furthest so far, which is the previous one while none overlapped.
        parts.Sort((a, b) => a.Start != b.Start ? a.Start.CompareTo(b.Start)
            : a.Position != b.Position ? a.Position.CompareTo(b.Position)
            : a.Queue != b.Queue ? a.Queue.CompareTo(b.Queue)
            : a.Part.CompareTo(b.Part));
        for (int i = 1; i < parts.Count; i++)
        {
            var a = parts[i - 1];
            var b = parts[i];
            if (SplitRingLayout.Overlap(a.Start, a.Length, b.Start, b.Length))
            {
                // Blame the later slot in the session's order: the earlier one was fine on its own.
                if (b.Position < a.Position || (b.Position == a.Position && b.Queue < a.Queue))
                {
                    (a, b) = (b, a);
                }

                return $"slot {slots[b.Position].Index} queue {b.Queue}: {SplitRingLayout.PartName(b.Part)} at 0x{b.Start:x} overlaps " +
                    $"slot {slots[a.Position].Index} queue {a.Queue}'s {SplitRingLayout.PartName(a.Part)} at 0x{a.Start:x}";
            }
        }

        return null;
    }

    /// <summary>
    /// Null when every part lies inside the ring area (which the header check placed after the table and
    /// before the buffers), else which fixed area the stray part covers.
    /// </summary>
    private static string? OutsideRingArea(SplitRingLayout layout, in WindowGeometry geometry)
    {
        var ringArea = new BufferRegion(geometry.RingAreaOffset, geometry.RingAreaSize);
        for (int p = 0; p < SplitRingLayout.PartCount; p++)
        {
            (ulong start, ulong length) = layout.Part(p);
            if (ringArea.Contains(start, length))
            {
                continue;
            }

            string where = $"{SplitRingLayout.PartName(p)} at 0x{start:x} lies outside the ring area 0x{geometry.RingAreaOffset:x}..0x{geometry.RingAreaOffset + geometry.RingAreaSize:x}";
            foreach ((string name, ulong areaStart, ulong areaLength) in s_fixedAreas)
            {
                if (SplitRingLayout.Overlap(start, length, areaStart, areaLength))
                {
                    return $"{where}, over the {name} (0x{areaStart:x}..0x{areaStart + areaLength:x})";
                }
            }

            return where;
        }

        return null;
    }

    /// <summary>Vector 0 is the control vector; queue vectors are 1..N-1.</summary>
    private static string? CheckVector(ushort vector, int maxVector) =>
        vector == 0 ? "vector 0 is the control vector, not a queue's"
        : vector >= maxVector ? $"vector {vector} is not below {maxVector}"
        : null;

    /// <summary>True when a part of <paramref name="a"/> shares a byte with a part of <paramref name="b"/>; names the first pair.</summary>
    private static bool Overlap(SplitRingLayout a, SplitRingLayout b, out int partA, out int partB)
    {
        for (partA = 0; partA < SplitRingLayout.PartCount; partA++)
        {
            (ulong aStart, ulong aLength) = a.Part(partA);
            for (partB = 0; partB < SplitRingLayout.PartCount; partB++)
            {
                (ulong bStart, ulong bLength) = b.Part(partB);
                if (SplitRingLayout.Overlap(aStart, aLength, bStart, bLength))
                {
                    return true;
                }
            }
        }

        partB = 0;
        return false;
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
