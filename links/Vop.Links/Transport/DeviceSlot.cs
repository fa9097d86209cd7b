using System.Buffers.Binary;
using Vop.Links.Rings;
using Vop.Links.Windows;

namespace Vop.Links.Transport;

/// <summary>What a poll of the driver's status found.</summary>
public enum SlotEvent
{
    None,
    Progress,          // ACKNOWLEDGE/DRIVER bits, nothing to do
    FeaturesAccepted,  // FEATURES_OK with a valid feature set: negotiated features are fixed
    FeaturesRefused,   // FEATURES_OK with garbage: echoed without FEATURES_OK, counted
    DriverOk,          // start the queues
    Reset,             // driver wrote 0: stop the queues, forget ring state
    Failed,            // driver gave up (FAILED) or broke the sequence: stop the queues
}

/// <summary>
/// A device inserted by the device side into one slot of the device table: writes type, features,
/// config space and queue placement, and follows the driver through the virtio status sequence
/// (virtio 1.2 section 3.1.1). Status changes are acknowledged through a sequence number so the driver
/// can tell "refused" from "not processed yet".
/// </summary>
public sealed class DeviceSlot
{
    private readonly WindowAccessor _window;
    private readonly ulong _slot;
    private uint _lastSeq;
    private uint _accepted;
    private uint _generation;
    private uint _configGeneration;
    private byte[] _config = [];
    private bool _removed;

    public DeviceSlot(in WindowAccessor window, int index, DeviceType type, ulong features, IReadOnlyList<SplitRingLayout> queues, IReadOnlyList<ushort> vectors)
    {
        if ((uint)index >= WindowLayout.SlotCount)
        {
            throw new ArgumentOutOfRangeException(nameof(index), $"slot {index} is outside the device table");
        }

        if (queues.Count is 0 or > WindowLayout.MaxQueuesPerDevice || vectors.Count != queues.Count)
        {
            throw new ArgumentException($"a device has 1..{WindowLayout.MaxQueuesPerDevice} queues, each with a vector");
        }

        if ((features & VirtioFeatures.Version1) == 0)
        {
            throw new ArgumentException("device features must include VIRTIO_F_VERSION_1", nameof(features));
        }

        _window = window;
        _slot = WindowLayout.Slot(index);
        Index = index;
        Type = type;
        DeviceFeatures = features;
        Queues = queues;
        Vectors = vectors;
    }

    public int Index { get; }

    public DeviceType Type { get; }

    public ulong DeviceFeatures { get; }

    public IReadOnlyList<SplitRingLayout> Queues { get; }

    public IReadOnlyList<ushort> Vectors { get; }

    /// <summary>Features fixed at FEATURES_OK; 0 before.</summary>
    public ulong NegotiatedFeatures { get; private set; }

    /// <summary>The status the device side has accepted (what the driver reads back).</summary>
    public VirtioStatus Status => (VirtioStatus)_accepted;

    public bool IsLive => (_accepted & (uint)VirtioStatus.DriverOk) != 0 && (_accepted & (uint)VirtioStatus.NeedsReset) == 0;

    /// <summary>Feature negotiation errors seen (counted as ring error kind <c>feature</c> by the owner).</summary>
    public long FeatureErrors { get; private set; }

    /// <summary>Writes the slot, config space first, the type last (release) so a reader that sees the type sees the rest.</summary>
    public void Insert(ReadOnlySpan<byte> config)
    {
        CheckConfigSize(config);

        _config = config.ToArray();
        _configGeneration = 0;
        _accepted = 0;
        NegotiatedFeatures = 0;
        _lastSeq = _window.ReadU32Acquire(_slot + WindowLayout.SlotStatusSeq);
        _generation++;
        Publish();
    }

    /// <summary>
    /// True when every device-owned field of the slot (offsets 0..0x300) still holds what we wrote. The
    /// driver never writes there, so a difference is damage: a stray write, a scribbling peer.
    /// </summary>
    public bool IsIntact()
    {
        if (_removed)
        {
            return true;
        }

        Span<byte> expected = stackalloc byte[DeviceOwnedBytes];
        Render(expected);
        return _window.Bytes(_slot, DeviceOwnedBytes).SequenceEqual(expected);
    }

    /// <summary>Rewrites the device-owned fields as we last wrote them, the type last, like an insert.</summary>
    public void Repair() => Publish();

    private const int DeviceOwnedBytes = (int)WindowLayout.SlotDriverFeatures;

    private void Publish()
    {
        Span<byte> image = stackalloc byte[DeviceOwnedBytes];
        Render(image);
        _window.WriteU32Release(_slot + WindowLayout.SlotDeviceType, 0);
        image[4..].CopyTo(_window.Bytes(_slot + 4, DeviceOwnedBytes - 4));
        _window.WriteU32Release(_slot + WindowLayout.SlotDeviceType, (uint)Type);
    }

    /// <summary>The device-owned part of the slot as it should read now: layout of docs/wire-format.md.</summary>
    private void Render(Span<byte> image)
    {
        image.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(image[(int)WindowLayout.SlotDeviceType..], (uint)Type);
        BinaryPrimitives.WriteUInt16LittleEndian(image[(int)WindowLayout.SlotQueueCount..], (ushort)Queues.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(image[(int)WindowLayout.SlotConfigSize..], (ushort)_config.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(image[(int)WindowLayout.SlotDeviceFeatures..], DeviceFeatures);
        BinaryPrimitives.WriteUInt32LittleEndian(image[(int)WindowLayout.SlotConfigGeneration..], _configGeneration);
        BinaryPrimitives.WriteUInt32LittleEndian(image[(int)WindowLayout.SlotDeviceStatus..], _accepted);
        BinaryPrimitives.WriteUInt32LittleEndian(image[(int)WindowLayout.SlotDeviceGeneration..], _generation);
        BinaryPrimitives.WriteUInt32LittleEndian(image[(int)WindowLayout.SlotStatusAck..], _lastSeq);
        _config.CopyTo(image[(int)WindowLayout.SlotConfig..]);
        for (int q = 0; q < Queues.Count; q++)
        {
            Span<byte> e = image[(int)(WindowLayout.SlotQueues + ((ulong)q * WindowLayout.QueueEntrySize))..];
            BinaryPrimitives.WriteUInt16LittleEndian(e[(int)WindowLayout.QueueSize..], Queues[q].Size);
            BinaryPrimitives.WriteUInt16LittleEndian(e[(int)WindowLayout.QueueVector..], Vectors[q]);
            BinaryPrimitives.WriteUInt64LittleEndian(e[(int)WindowLayout.QueueDescOffset..], Queues[q].DescOffset);
            BinaryPrimitives.WriteUInt64LittleEndian(e[(int)WindowLayout.QueueAvailOffset..], Queues[q].AvailOffset);
            BinaryPrimitives.WriteUInt64LittleEndian(e[(int)WindowLayout.QueueUsedOffset..], Queues[q].UsedOffset);
        }
    }

    /// <summary>Rewrites config space under the generation counter (odd while writing, virtio 2.5.1).</summary>
    public void UpdateConfig(ReadOnlySpan<byte> config)
    {
        CheckConfigSize(config);

        ulong g = _slot + WindowLayout.SlotConfigGeneration;
        _window.WriteU32Release(g, _configGeneration | 1);
        _window.Clear(_slot + WindowLayout.SlotConfig, WindowLayout.MaxConfigSize);
        config.CopyTo(_window.Bytes(_slot + WindowLayout.SlotConfig, config.Length));
        _config = config.ToArray();
        _window.WriteU16(_slot + WindowLayout.SlotConfigSize, (ushort)config.Length);
        _configGeneration = (_configGeneration | 1) + 1;
        _window.WriteU32Release(g, _configGeneration);
    }

    private static void CheckConfigSize(ReadOnlySpan<byte> config)
    {
        if (config.Length > WindowLayout.MaxConfigSize)
        {
            throw new ArgumentException($"config space of {config.Length} bytes exceeds {WindowLayout.MaxConfigSize}", nameof(config));
        }
    }

    /// <summary>Removes the device from the table.</summary>
    public void Remove()
    {
        _removed = true;
        _window.WriteU32Release(_slot + WindowLayout.SlotDeviceType, 0);
    }

    /// <summary>Sets NEEDS_RESET: the driver must reset the device before it is used again.</summary>
    public void RequestReset()
    {
        _accepted |= (uint)VirtioStatus.NeedsReset;
        _window.WriteU32Release(_slot + WindowLayout.SlotDeviceStatus, _accepted);
    }

    /// <summary>
    /// Reads the driver's status once and advances the state machine. Cheap when nothing changed; call on
    /// the control doorbell and periodically. <paramref name="beforeAck"/> runs before the driver sees the
    /// acknowledgement, so whatever it prepares (used rings cleared, queues stopped) is visible first.
    /// </summary>
    public SlotEvent Poll(Action<SlotEvent>? beforeAck = null)
    {
        uint seq = _window.ReadU32Acquire(_slot + WindowLayout.SlotStatusSeq);
        if (seq == _lastSeq)
        {
            return SlotEvent.None;
        }

        uint status = _window.ReadU32(_slot + WindowLayout.SlotDriverStatus);
        SlotEvent ev = Advance(status);
        beforeAck?.Invoke(ev);
        _lastSeq = seq;
        _window.WriteU32(_slot + WindowLayout.SlotDeviceStatus, _accepted);
        _window.WriteU32Release(_slot + WindowLayout.SlotStatusAck, seq);
        return ev;
    }

    private SlotEvent Advance(uint status)
    {
        const uint Ack = (uint)VirtioStatus.Acknowledge;
        const uint Drv = (uint)VirtioStatus.Driver;
        const uint FeatOk = (uint)VirtioStatus.FeaturesOk;
        const uint DrvOk = (uint)VirtioStatus.DriverOk;
        const uint Failed = (uint)VirtioStatus.Failed;
        const uint Known = Ack | Drv | FeatOk | DrvOk | Failed;

        if (status == 0)
        {
            bool wasActive = _accepted != 0;
            _accepted = 0;
            NegotiatedFeatures = 0;
            _window.WriteU32(_slot + WindowLayout.SlotDeviceGeneration, ++_generation);
            return wasActive ? SlotEvent.Reset : SlotEvent.Progress;
        }

        if ((status & Failed) != 0 || (status & ~Known) != 0)
        {
            _accepted = (_accepted & (uint)VirtioStatus.NeedsReset) | Failed;
            return SlotEvent.Failed;
        }

        if ((_accepted & (Failed | (uint)VirtioStatus.NeedsReset)) != 0)
        {
            // Only a reset gets a failed or broken device going again.
            return SlotEvent.None;
        }

        // Bits are only ever added, in order; clearing one without a reset breaks the sequence.
        if ((status & _accepted) != _accepted)
        {
            return Break();
        }

        SlotEvent ev = SlotEvent.Progress;
        if ((status & FeatOk) != 0 && (_accepted & FeatOk) == 0)
        {
            ulong wanted = _window.ReadU64(_slot + WindowLayout.SlotDriverFeatures);
            if ((status & (Ack | Drv)) != (Ack | Drv) || (wanted & ~DeviceFeatures) != 0 || (wanted & VirtioFeatures.Version1) == 0)
            {
                FeatureErrors++;
                _accepted = status & (Ack | Drv);
                return SlotEvent.FeaturesRefused;
            }

            NegotiatedFeatures = wanted;
            ev = SlotEvent.FeaturesAccepted;
        }

        if ((status & DrvOk) != 0 && (_accepted & DrvOk) == 0)
        {
            if ((status & FeatOk) == 0)
            {
                return Break();
            }

            _accepted = status & Known;
            return SlotEvent.DriverOk;
        }

        _accepted = status & Known;
        return ev;
    }

    private SlotEvent Break()
    {
        FeatureErrors++;
        _accepted |= (uint)VirtioStatus.NeedsReset;
        return SlotEvent.Failed;
    }
}
