using System.Runtime.CompilerServices;
using Vop.Links.Doorbells;
using Vop.Links.Windows;
using Vop.Links.Stats;

namespace Vop.Links.Rings;

/// <summary>
/// The device side of a split virtqueue: pops available chains posted by the driver, walks and
/// validates their descriptors, pushes used entries, publishes the used index once per batch and
/// notifies the driver only when its used_event asks for it (VIRTIO_F_EVENT_IDX).
/// The driver is not trusted: every shared field is read once into a local and validated before use;
/// a violation quarantines this queue (<see cref="Fault"/>) and nothing else.
/// The used ring is ours: we never read it back, our private indices are the truth.
/// </summary>
public sealed class DeviceQueue
{
    private readonly WindowAccessor _window;
    private readonly SplitRingLayout _layout;
    private readonly BufferRegion _buffers;
    private readonly ushort _mask;
    private readonly bool _eventIdx;
    private readonly GuestRegions? _regions;
    private readonly IndexPublisher _publisher;

    private ushort _lastAvail;     // next avail slot to pop
    private ushort _availSeen;     // last avail idx read from the driver, validated
    private ushort _usedIdx;       // next used slot to fill
    private ushort _usedPublished; // used idx last made visible
    private long _batchPackets;
    private long _batchBytes;

    // regions: set for a window with holes (vhost-user guest memory); every ring part and descriptor must
    // then lie inside one region, and rings may sit among the buffers (the guest owns all of its memory).
    public DeviceQueue(in WindowAccessor window, SplitRingLayout layout, BufferRegion buffers, bool eventIdx, Doorbell? notify, QueueStats stats, GuestRegions? regions = null)
    {
        string? why = layout.Validate(window, buffers, regions);
        if (why is not null)
        {
            throw new ArgumentException($"queue {stats.Name}: {why}", nameof(layout));
        }

        _window = window;
        _layout = layout;
        _buffers = buffers;
        _mask = (ushort)(layout.Size - 1);
        _eventIdx = eventIdx;
        _regions = regions;
        _publisher = IndexPublisher.ForDevice(window, layout, eventIdx, notify, stats);
        Notify = notify;
        Stats = stats;
    }

    /// <summary>Where the ring's parts lie in the window (what a kernel datapath, vhost-net, is handed).</summary>
    public SplitRingLayout Layout => _layout;

    /// <summary>The range every descriptor must lie in.</summary>
    public BufferRegion Buffers => _buffers;

    /// <summary>What interrupts the driver for this queue (null: nothing).</summary>
    public Doorbell? Notify { get; }

    /// <summary>True on a window with holes (vhost-user guest memory), where descriptors may lie in any of several regions.</summary>
    public bool HasGuestRegions => _regions is not null;

    public QueueStats Stats { get; }

    public ushort Size => _layout.Size;

    /// <summary>None while healthy; the reason once quarantined. A quarantined queue does nothing until <see cref="Reset"/>.</summary>
    public RingErrorKind Fault { get; private set; }

    /// <summary>Chains popped whose used entries are not yet published.</summary>
    public int InFlight => (ushort)(_lastAvail - _usedIdx);

    /// <summary>Zeroes the used ring and private indices (device side owns the used ring).</summary>
    public void Reset()
    {
        _window.Clear(_layout.UsedOffset, SplitRingLayout.UsedBytes(_layout.Size));
        _lastAvail = _availSeen = _usedIdx = _usedPublished = 0;
        _batchPackets = _batchBytes = 0;
        Fault = RingErrorKind.None;
    }

    /// <summary>
    /// Resumes at given indices instead of 0 (vhost-user SET_VRING_BASE, or a device side restarting on a
    /// live ring): the next pop reads avail slot <paramref name="lastAvail"/>, the next push fills used
    /// slot <paramref name="usedIdx"/>.
    /// </summary>
    public void SetBase(ushort lastAvail, ushort usedIdx)
    {
        _lastAvail = _availSeen = lastAvail;
        _usedIdx = _usedPublished = usedIdx;
    }

    /// <summary>The next avail slot to pop (vhost-user GET_VRING_BASE).</summary>
    public ushort LastAvail => _lastAvail;

    /// <summary>
    /// Gives back the chain popped last, not yet pushed (a pump stopping while it holds a receive buffer):
    /// the next pop returns it again, and a GET_VRING_BASE in between reports it as not consumed.
    /// </summary>
    public void Unpop()
    {
        if (_lastAvail != _usedIdx)
        {
            _lastAvail--;
        }
    }

    /// <summary>How many chains the driver has made available beyond what we popped (0 when quarantined).</summary>
    public int Available()
    {
        if (Fault != RingErrorKind.None)
        {
            return 0;
        }

        return RefreshAvail() ? (ushort)(_availSeen - _lastAvail) : 0;
    }

    private bool RefreshAvail()
    {
        ushort idx = _window.ReadU16Acquire(_layout.AvailIdx);
        ushort delta = (ushort)(idx - _lastAvail);
        if (delta > _layout.Size)
        {
            // Wrap-aware: a jump of more than the queue size (or idx going backwards) is nonsense.
            Quarantine(RingErrorKind.AvailJump);
            return false;
        }

        _availSeen = idx;
        return true;
    }

    /// <summary>
    /// Pops the next available chain into <paramref name="segments"/>. False when none is available or
    /// the queue is (now) quarantined. A chain longer than the span is still consumed; the caller sees
    /// <see cref="DescriptorChain.Truncated"/> and should complete it with length 0 (a drop).
    /// </summary>
    public bool TryPop(Span<BufferSegment> segments, out DescriptorChain chain)
    {
        chain = default;
        if (Fault != RingErrorKind.None)
        {
            return false;
        }

        if (_availSeen == _lastAvail && (!RefreshAvail() || _availSeen == _lastAvail))
        {
            return false;
        }

        ushort head = _window.ReadU16(_layout.AvailEntry((ushort)(_lastAvail & _mask)));
        if (head >= _layout.Size)
        {
            Quarantine(RingErrorKind.BadHead);
            return false;
        }

        ushort index = head;
        int count = 0;
        ulong readable = 0;
        ulong writable = 0;
        bool seenWritable = false;
        while (true)
        {
            // Hop budget = table size: the longest legal chain uses every descriptor once.
            if (count >= _layout.Size)
            {
                Quarantine(RingErrorKind.Loop);
                return false;
            }

            // One read of the whole entry: every field below comes from this copy.
            VirtqDesc desc = _window.Read<VirtqDesc>(_layout.Desc(index));
            ulong addr = desc.Addr;
            uint len = desc.Len;
            ushort flags = desc.Flags;
            ushort next = desc.Next;

            if ((flags & SplitRingLayout.DescFlagIndirect) != 0)
            {
                Quarantine(RingErrorKind.Indirect);
                return false;
            }

            if (!_buffers.Contains(addr, len) || (_regions is not null && !_regions.Contains(addr, len)))
            {
                Quarantine(RingErrorKind.OutOfWindow);
                return false;
            }

            bool deviceWritable = (flags & SplitRingLayout.DescFlagWrite) != 0;
            if (deviceWritable)
            {
                seenWritable = true;
                writable += len;
            }
            else if (seenWritable)
            {
                Quarantine(RingErrorKind.DescOrder);
                return false;
            }
            else
            {
                readable += len;
            }

            if (count < segments.Length)
            {
                segments[count] = new BufferSegment(addr, len, deviceWritable);
            }

            count++;
            if ((flags & SplitRingLayout.DescFlagNext) == 0)
            {
                break;
            }

            if (next >= _layout.Size)
            {
                Quarantine(RingErrorKind.BadNext);
                return false;
            }

            index = next;
        }

        _lastAvail++;
        chain = new DescriptorChain(head, Math.Min(count, segments.Length), count, readable, writable);
        return true;
    }

    /// <summary>Fills the next used entry; becomes visible to the driver at <see cref="Publish"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PushUsed(ushort head, uint writtenLength)
    {
        _window.Write(_layout.UsedEntry((ushort)(_usedIdx & _mask)), new VirtqUsedElem(head, writtenLength));
        _usedIdx++;
        _batchPackets++;
        _batchBytes += writtenLength;
    }

    /// <summary>Counts payload bytes the device consumed (driver-to-device direction) for this batch.</summary>
    public void CountConsumed(ulong bytes) => _batchBytes += (long)bytes;

    /// <summary>
    /// Makes every pushed used entry visible with one release store and notifies the driver at most once,
    /// only if its used_event lies in the published range. Returns whether it notified. Still publishes
    /// after a quarantine: completions pushed before the violation are real and the driver may reap them.
    /// </summary>
    public bool Publish()
    {
        if (_usedIdx == _usedPublished)
        {
            return false;
        }

        ushort old = _usedPublished;
        ushort now = _usedIdx;
        _usedPublished = now;
        QueueStats s = Stats;
        s.Packets += _batchPackets;
        s.Bytes += _batchBytes;
        _batchPackets = _batchBytes = 0;
        return _publisher.Publish(old, now, (ushort)(_availSeen - _lastAvail));
    }

    /// <summary>
    /// Asks the driver to kick at its next avail update, then re-checks. True when buffers are already
    /// available (do not sleep); false when it is safe to sleep on the doorbell.
    /// </summary>
    public bool EnableNotifications()
    {
        if (Fault != RingErrorKind.None)
        {
            return false;
        }

        if (_eventIdx)
        {
            _window.WriteU16Release(_layout.AvailEvent, _lastAvail);
        }
        else
        {
            _window.WriteU16Release(_layout.UsedFlags, 0);
        }

        // Fence: avail_event must be visible before we re-read avail idx. Otherwise the driver can add a
        // buffer, read our stale avail_event and skip the kick while we read the stale avail idx and sleep.
        WindowAccessor.FullFence();
        return Available() > 0;
    }

    /// <summary>Tells the driver not to kick while we poll (no-op with EVENT_IDX: a stale avail_event suppresses).</summary>
    public void DisableNotifications()
    {
        if (!_eventIdx)
        {
            _window.WriteU16Release(_layout.UsedFlags, SplitRingLayout.UsedFlagNoNotify);
        }
    }

    /// <summary>Quarantines the queue with <paramref name="kind"/>; the first reason sticks.</summary>
    public void Quarantine(RingErrorKind kind)
    {
        Stats.RingErrors[(int)kind]++;
        if (Fault == RingErrorKind.None)
        {
            Fault = kind;
        }
    }
}
