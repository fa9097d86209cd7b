using Vop.Links.Doorbells;
using Vop.Links.Windows;
using Vop.Links.Stats;

namespace Vop.Links.Rings;

/// <summary>
/// The driver side of a split virtqueue: adds buffer chains from the driver's buffer region, publishes
/// the avail index once per batch, kicks the device only when its avail_event asks for it, and reaps used
/// entries. The device is not trusted: a used entry must name an outstanding head and a length no larger
/// than what was posted. All bookkeeping (free list, chain links, posted lengths) is private, so the
/// device scribbling on the descriptor table cannot corrupt it.
/// </summary>
public sealed class DriverQueue
{
    private readonly WindowAccessor _window;
    private readonly SplitRingLayout _layout;
    private readonly BufferRegion _buffers;
    private readonly ushort _mask;
    private readonly bool _eventIdx;
    private readonly IndexPublisher _publisher;

    private readonly ushort[] _freeNext;      // private free list links
    private readonly ushort[] _chainTail;     // per head: last descriptor of the chain
    private readonly ushort[] _chainCount;    // per head: descriptors in the chain, 0 when not outstanding
    private readonly uint[] _postedWritable;  // per head: device-writable bytes posted
    private readonly long[] _postedAt;        // per head: Stopwatch timestamp of a data-carrying chain, 0 otherwise
    private ushort _freeHead;
    private int _freeCount;
    private int _outstanding;

    private ushort _availIdx;
    private ushort _availPublished;
    private ushort _lastUsed;
    private ushort _usedSeen;
    private long _batchPackets;
    private long _batchBytes;

    public DriverQueue(in WindowAccessor window, SplitRingLayout layout, BufferRegion buffers, bool eventIdx, Doorbell? kick, QueueStats stats)
    {
        string? why = layout.Validate(window, buffers);
        if (why is not null)
        {
            throw new ArgumentException($"queue {stats.Name}: {why}", nameof(layout));
        }

        _window = window;
        _layout = layout;
        _buffers = buffers;
        _mask = (ushort)(layout.Size - 1);
        _eventIdx = eventIdx;
        _publisher = IndexPublisher.ForDriver(window, layout, eventIdx, kick, stats);
        Stats = stats;
        _freeNext = new ushort[layout.Size];
        _chainTail = new ushort[layout.Size];
        _chainCount = new ushort[layout.Size];
        _postedWritable = new uint[layout.Size];
        _postedAt = new long[layout.Size];
        Reset();
    }

    public QueueStats Stats { get; }

    public ushort Size => _layout.Size;

    public RingErrorKind Fault { get; private set; }

    /// <summary>Free descriptors.</summary>
    public int FreeDescriptors => _freeCount;

    /// <summary>Chains posted and not yet reaped.</summary>
    public int Outstanding => _outstanding;

    /// <summary>Zeroes the avail ring and descriptor table (ours) and every private index.</summary>
    public void Reset()
    {
        _window.Clear(_layout.DescOffset, SplitRingLayout.DescBytes(_layout.Size));
        _window.Clear(_layout.AvailOffset, SplitRingLayout.AvailBytes(_layout.Size));
        for (int i = 0; i < _freeNext.Length; i++)
        {
            _freeNext[i] = (ushort)(i + 1);
            _chainCount[i] = 0;
        }

        _freeHead = 0;
        _freeCount = _layout.Size;
        _outstanding = 0;
        _availIdx = _availPublished = _lastUsed = _usedSeen = 0;
        _batchPackets = _batchBytes = 0;
        Fault = RingErrorKind.None;
    }

    /// <summary>
    /// Writes a chain of <paramref name="segments"/> (device-readable ones first) into free descriptors
    /// and the next avail slot. Visible to the device at <see cref="Publish"/>. False when there are not
    /// enough free descriptors, the chain is empty or the queue is quarantined.
    /// </summary>
    public bool TryAdd(ReadOnlySpan<BufferSegment> segments, out ushort head)
    {
        head = 0;
        int n = segments.Length;
        if (n == 0 || n > _freeCount || Fault != RingErrorKind.None)
        {
            return false;
        }

        head = _freeHead;
        ushort index = head;
        ushort last = head;
        ulong writable = 0;
        for (int k = 0; k < n; k++)
        {
            BufferSegment s = segments[k];
            if (!_buffers.Contains(s.Offset, s.Length))
            {
                throw new ArgumentOutOfRangeException(nameof(segments), $"segment 0x{s.Offset:x}+{s.Length} is outside the buffer region");
            }

            bool more = k + 1 < n;
            ushort next = _freeNext[index];
            ushort flags = (ushort)((s.DeviceWritable ? SplitRingLayout.DescFlagWrite : 0) | (more ? SplitRingLayout.DescFlagNext : 0));
            _window.Write(_layout.Desc(index), new VirtqDesc(s.Offset, s.Length, flags, more ? next : (ushort)0));
            if (s.DeviceWritable)
            {
                writable += s.Length;
            }

            last = index;
            index = next;
        }

        _freeHead = index;
        _freeCount -= n;
        _outstanding++;
        _chainTail[head] = last;
        _chainCount[head] = (ushort)n;
        _postedWritable[head] = (uint)Math.Min(writable, uint.MaxValue);
        // Latency is measured for chains that carry data to the device (nothing for it to write back):
        // made available here, completion seen in TryReap.
        _postedAt[head] = writable == 0 ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        _window.WriteU16(_layout.AvailEntry((ushort)(_availIdx & _mask)), head);
        _availIdx++;
        return true;
    }

    /// <summary>Single-buffer convenience for <see cref="TryAdd(ReadOnlySpan{BufferSegment}, out ushort)"/>.</summary>
    public bool TryAdd(BufferSegment segment, out ushort head) =>
        TryAdd(new ReadOnlySpan<BufferSegment>(in segment), out head);

    /// <summary>
    /// Publishes every added chain with one release store and kicks the device at most once, only if its
    /// avail_event lies in the published range. Returns whether it kicked.
    /// </summary>
    public bool Publish()
    {
        if (_availIdx == _availPublished || Fault != RingErrorKind.None)
        {
            return false;
        }

        ushort old = _availPublished;
        ushort now = _availIdx;
        _availPublished = now;
        return _publisher.Publish(old, now, _outstanding);
    }

    /// <summary>
    /// Reaps the next used entry, validated: the head must be outstanding (else quarantine), the length no
    /// larger than posted (else counted as <see cref="RingErrorKind.UsedLen"/> and reported invalid).
    /// The chain's descriptors return to the free list.
    /// </summary>
    public bool TryReap(out UsedElement used)
    {
        used = default;
        if (Fault != RingErrorKind.None)
        {
            return false;
        }

        if (_usedSeen == _lastUsed)
        {
            ushort idx = _window.ReadU16Acquire(_layout.UsedIdx);
            ushort delta = (ushort)(idx - _lastUsed);
            if (delta == 0)
            {
                return false;
            }

            if (delta > _outstanding)
            {
                Quarantine(RingErrorKind.UsedJump);
                return false;
            }

            _usedSeen = idx;
        }

        VirtqUsedElem e = _window.Read<VirtqUsedElem>(_layout.UsedEntry((ushort)(_lastUsed & _mask)));
        uint id = e.Id;
        uint len = e.Len;
        if (id >= _layout.Size || _chainCount[id] == 0)
        {
            Quarantine(RingErrorKind.UsedId);
            return false;
        }

        ushort head = (ushort)id;
        _freeNext[_chainTail[head]] = _freeHead;
        _freeHead = head;
        _freeCount += _chainCount[head];
        _chainCount[head] = 0;
        _outstanding--;
        _lastUsed++;

        if (_postedAt[head] != 0)
        {
            Stats.RecordLatency(System.Diagnostics.Stopwatch.GetTimestamp() - _postedAt[head]);
        }

        bool valid = len <= _postedWritable[head];
        if (!valid)
        {
            Stats.RingErrors[(int)RingErrorKind.UsedLen]++;
            len = 0;
        }

        _batchPackets++;
        _batchBytes += len;
        used = new UsedElement(head, len, valid);
        return true;
    }

    /// <summary>Adds the reaped entries' counts to the statistics once per batch.</summary>
    public void FlushReapStats(ulong consumedBytes = 0)
    {
        Stats.Packets += _batchPackets;
        Stats.Bytes += _batchBytes + (long)consumedBytes;
        _batchPackets = _batchBytes = 0;
    }

    /// <summary>
    /// Asks the device to interrupt at its next used update, then re-checks. True when used entries are
    /// already there (do not sleep); false when it is safe to sleep on the doorbell.
    /// </summary>
    public bool EnableInterrupts()
    {
        if (Fault != RingErrorKind.None)
        {
            return false;
        }

        if (_eventIdx)
        {
            _window.WriteU16Release(_layout.UsedEvent, _lastUsed);
        }
        else
        {
            _window.WriteU16Release(_layout.AvailFlags, 0);
        }

        // Fence: used_event must be visible before we re-read used idx. Otherwise the device can push a
        // used entry, read our stale used_event and skip the interrupt while we read the stale used idx.
        WindowAccessor.FullFence();
        return _window.ReadU16Acquire(_layout.UsedIdx) != _lastUsed;
    }

    /// <summary>Tells the device not to interrupt while we poll (no-op with EVENT_IDX).</summary>
    public void DisableInterrupts()
    {
        if (!_eventIdx)
        {
            _window.WriteU16Release(_layout.AvailFlags, SplitRingLayout.AvailFlagNoInterrupt);
        }
    }

    public void Quarantine(RingErrorKind kind)
    {
        Stats.RingErrors[(int)kind]++;
        if (Fault == RingErrorKind.None)
        {
            Fault = kind;
        }
    }
}
