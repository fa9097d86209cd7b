using System.Runtime.CompilerServices;
using Vop.Links.Doorbells;
using Vop.Links.Stats;
using Vop.Links.Windows;

namespace Vop.Links.Rings;

/// <summary>
/// The publish tail both roles share, once per batch: make our ring index visible with one release store,
/// fence, decide from the peer's event index (VIRTIO_F_EVENT_IDX) or its suppression flag whether it wants
/// a notification, count the batch and ring the doorbell at most once. The device side publishes used.idx
/// against the driver's used_event / avail.flags NO_INTERRUPT; the driver side avail.idx against the
/// device's avail_event / used.flags NO_NOTIFY. Everything fixed per queue is captured at construction.
/// </summary>
internal readonly struct IndexPublisher
{
    private readonly WindowAccessor _window;
    private readonly ulong _index;        // our idx field
    private readonly ulong _peerEvent;    // the peer's event index (with EVENT_IDX)
    private readonly ulong _peerFlags;    // the peer's flags field (without EVENT_IDX)
    private readonly ushort _peerSuppress; // the flag bit in _peerFlags that says "do not notify me"
    private readonly bool _eventIdx;
    private readonly Doorbell? _doorbell;
    private readonly QueueStats _stats;

    private IndexPublisher(in WindowAccessor window, ulong index, ulong peerEvent, ulong peerFlags, ushort peerSuppress, bool eventIdx, Doorbell? doorbell, QueueStats stats)
    {
        _window = window;
        _index = index;
        _peerEvent = peerEvent;
        _peerFlags = peerFlags;
        _peerSuppress = peerSuppress;
        _eventIdx = eventIdx;
        _doorbell = doorbell;
        _stats = stats;
    }

    /// <summary>The device side: publishes used.idx, interrupts the driver.</summary>
    public static IndexPublisher ForDevice(in WindowAccessor window, SplitRingLayout layout, bool eventIdx, Doorbell? interrupt, QueueStats stats) =>
        new(window, layout.UsedIdx, layout.UsedEvent, layout.AvailFlags, SplitRingLayout.AvailFlagNoInterrupt, eventIdx, interrupt, stats);

    /// <summary>The driver side: publishes avail.idx, kicks the device.</summary>
    public static IndexPublisher ForDriver(in WindowAccessor window, SplitRingLayout layout, bool eventIdx, Doorbell? kick, QueueStats stats) =>
        new(window, layout.AvailIdx, layout.AvailEvent, layout.UsedFlags, SplitRingLayout.UsedFlagNoNotify, eventIdx, kick, stats);

    /// <summary>
    /// Publishes <paramref name="now"/> (the index was <paramref name="old"/>), records the batch with the
    /// queue's <paramref name="occupancy"/> and notifies the peer if it asked. Returns whether it notified.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Publish(ushort old, ushort now, long occupancy)
    {
        _window.WriteU16Release(_index, now);

        // Fence: our idx store must be visible before we read the peer's event index. Otherwise the peer can
        // publish its event index and re-check our idx (still old) while we read its stale event index: both
        // decide not to act and the peer sleeps on work that is there (virtio 2.7.10 / 2.7.13).
        WindowAccessor.FullFence();
        bool notify = _eventIdx
            ? SplitRingLayout.NeedEvent(_window.ReadU16(_peerEvent), now, old)
            : (_window.ReadU16(_peerFlags) & _peerSuppress) == 0;

        QueueStats s = _stats;
        s.Batches++;
        s.RecordBatch((ushort)(now - old));
        s.Occupancy = occupancy;
        if (notify)
        {
            s.NotificationsSent++;
            _doorbell?.Ring();
        }
        else
        {
            s.NotificationsSuppressed++;
        }

        return notify;
    }
}
