namespace Vop.Metrics;

/// <summary>
/// Per-queue statistics cell. The queue's own pump thread is the only writer: it bumps these plain
/// fields once per batch. Readers (the exporter, <c>vop status</c>) read them at scrape time; a torn
/// read of a 64-bit counter cannot happen on the 64-bit targets we build for.
/// </summary>
public sealed class QueueStats
{
    /// <summary>Number of distinct ring error kinds a cell keeps (indexes <see cref="RingErrors"/>).</summary>
    public const int RingErrorKinds = 16;

    /// <summary>Number of distinct drop reasons a cell keeps (indexes <see cref="Drops"/>).</summary>
    public const int DropReasons = 8;

    public QueueStats(string name)
    {
        Name = name;
    }

    /// <summary>Queue name as exported in the <c>queue</c> label.</summary>
    public string Name { get; }

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

    /// <summary>Ring errors by kind; the index is the ring error kind's numeric value.</summary>
    public readonly long[] RingErrors = new long[RingErrorKinds];

    /// <summary>Dropped buffers by reason; the index is the drop reason's numeric value.</summary>
    public readonly long[] Drops = new long[DropReasons];

    /// <summary>Latency histogram: bucket i counts samples ≤ 2^i µs (i = 0..20, 1 µs to ~1 s); the last is +Inf.</summary>
    public readonly long[] LatencyBuckets = new long[LatencyHistogram.Buckets + 1];

    /// <summary>Sum of all latency samples, in Stopwatch ticks.</summary>
    public long LatencySumTicks;

    /// <summary>Number of latency samples.</summary>
    public long LatencyCount;

    /// <summary>Batch sizes: bucket i counts batches of ≤ 2^i buffers (i = 0..8, 1 to 256); the last is larger.</summary>
    public readonly long[] BatchSizeBuckets = new long[BatchSizeBucketCount + 1];

    public const int BatchSizeBucketCount = 9;

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

        int bucket = size <= 1 ? 0 : System.Numerics.BitOperations.Log2((ulong)size - 1) + 1;
        BatchSizeBuckets[Math.Min(bucket, BatchSizeBucketCount)]++;
        BatchSizeSum += size;
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
