using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using Vop.Links.Rings;

namespace Vop.Links.Stats;

/// <summary>
/// Per-queue statistics cell. The queue's own pump thread is the only writer: it bumps these plain
/// fields once per batch. Readers (the exporter, <c>vop status</c>) read them at scrape time; a torn
/// read of a 64-bit counter cannot happen on the 64-bit targets we build for. The arrays are sized from
/// the enums that index them: ring errors from <see cref="RingErrorKind"/>, drops from the device's own
/// drop-reason table given at construction.
/// </summary>
public sealed class QueueStats
{
    /// <summary>Latency buckets: bucket i counts samples ≤ 2^i µs (i = 0..20, 1 µs to ~1 s); one more is +Inf.</summary>
    public const int LatencyBucketCount = 21;

    /// <summary>Batch-size buckets: bucket i counts batches of ≤ 2^i buffers (i = 0..8, 1 to 256); one more is larger.</summary>
    public const int BatchSizeBucketCount = 9;

    private static readonly double s_ticksPerMicrosecond = Stopwatch.Frequency / 1e6;

    /// <param name="name">Queue name as exported in the <c>queue</c> label.</param>
    /// <param name="dropReasons">The device's drop-reason labels; a reason's numeric value indexes <see cref="Drops"/>.</param>
    public QueueStats(string name, IReadOnlyList<string> dropReasons)
    {
        Name = name;
        DropReasons = dropReasons;
        Drops = new long[dropReasons.Count];
    }

    /// <summary>A cell for a queue that drops nothing itself (ring tests, control queues of tools).</summary>
    public QueueStats(string name)
        : this(name, [])
    {
    }

    /// <summary>Queue name as exported in the <c>queue</c> label.</summary>
    public string Name { get; }

    /// <summary>Label of each drop reason, indexed like <see cref="Drops"/>.</summary>
    public IReadOnlyList<string> DropReasons { get; }

    /// <summary>Buffers (packets) completed by this queue.</summary>
    public long Packets;

    /// <summary>Payload bytes completed by this queue.</summary>
    public long Bytes;

    /// <summary>Batches processed (a batch publishes its index once).</summary>
    public long Batches;

    /// <summary>Notifications (kicks or interrupts) this side sent to the peer.</summary>
    public long NotificationsSent;

    /// <summary>Index publishes after which the peer's event index said no notification was needed.</summary>
    public long NotificationsSuppressed;

    /// <summary>Doorbells (eventfd wakeups) this side received for this queue.</summary>
    public long DoorbellsReceived;

    /// <summary>Ring errors by kind; the index is the <see cref="RingErrorKind"/> value.</summary>
    public readonly long[] RingErrors = new long[RingErrorKindNames.All.Count];

    /// <summary>Dropped buffers by reason; the index is the device's drop reason value.</summary>
    public readonly long[] Drops;

    /// <summary>Latency histogram buckets (see <see cref="LatencyBucketCount"/>); the last is +Inf.</summary>
    public readonly long[] LatencyBuckets = new long[LatencyBucketCount + 1];

    /// <summary>Sum of all latency samples, in Stopwatch ticks.</summary>
    public long LatencySumTicks;

    /// <summary>Number of latency samples.</summary>
    public long LatencyCount;

    /// <summary>Batch-size histogram buckets (see <see cref="BatchSizeBucketCount"/>); the last is larger.</summary>
    public readonly long[] BatchSizeBuckets = new long[BatchSizeBucketCount + 1];

    /// <summary>Sum of all recorded batch sizes.</summary>
    public long BatchSizeSum;

    /// <summary>Buffers in the ring at the last publish: outstanding chains (driver side) or available, not yet popped (device side).</summary>
    public long Occupancy;

    /// <summary>Records one batch of <paramref name="size"/> buffers.</summary>
    public void RecordBatch(long size)
    {
        if (size <= 0)
        {
            return;
        }

        int bucket = size <= 1 ? 0 : BitOperations.Log2((ulong)size - 1) + 1;
        BatchSizeBuckets[Math.Min(bucket, BatchSizeBucketCount)]++;
        BatchSizeSum += size;
    }

    /// <summary>Adds <paramref name="count"/> latency samples of <paramref name="ticks"/> Stopwatch ticks each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void RecordLatency(long ticks, long count = 1)
    {
        if (ticks < 0 || count <= 0)
        {
            return;
        }

        ulong us = (ulong)(ticks / s_ticksPerMicrosecond);
        int bucket = us <= 1 ? 0 : BitOperations.Log2(us - 1) + 1; // smallest i with us ≤ 2^i
        LatencyBuckets[Math.Min(bucket, LatencyBucketCount)] += count;
        LatencySumTicks += ticks * count;
        LatencyCount += count;
    }

    /// <summary>Sum of all ring errors, for tests and summaries.</summary>
    public long TotalRingErrors
    {
        get
        {
            long sum = 0;
            foreach (long v in RingErrors)
            {
                sum += v;
            }

            return sum;
        }
    }
}
