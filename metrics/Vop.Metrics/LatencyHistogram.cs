using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Text;

namespace Vop.Metrics;

/// <summary>
/// Per-queue latency in exponential buckets (1 µs · 2^i), kept as plain counters in the queue's cell by
/// the pump thread, exported at scrape time as a Prometheus histogram in seconds.
/// </summary>
public static class LatencyHistogram
{
    public const int Buckets = 21;

    private static readonly double s_ticksPerMicrosecond = Stopwatch.Frequency / 1e6;

    /// <summary>Adds <paramref name="count"/> samples of <paramref name="ticks"/> Stopwatch ticks each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Record(QueueStats stats, long ticks, long count = 1)
    {
        if (ticks < 0 || count <= 0)
        {
            return;
        }

        ulong us = (ulong)(ticks / s_ticksPerMicrosecond);
        int bucket = us <= 1 ? 0 : BitOperations.Log2(us - 1) + 1; // smallest i with us ≤ 2^i
        stats.LatencyBuckets[Math.Min(bucket, Buckets)] += count;
        stats.LatencySumTicks += ticks * count;
        stats.LatencyCount += count;
    }

    /// <summary>Upper bound of bucket <paramref name="i"/> in seconds.</summary>
    public static double UpperBoundSeconds(int i) => Math.Pow(2, i) / 1e6;

    /// <summary>Appends the text exposition of one queue's histogram (cumulative buckets, +Inf, sum, count).</summary>
    public static void Write(StringBuilder b, string name, string labels, QueueStats stats)
    {
        long cumulative = 0;
        for (int i = 0; i < Buckets; i++)
        {
            cumulative += stats.LatencyBuckets[i];
            b.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{labels},le=\"{UpperBoundSeconds(i).ToString("G6", CultureInfo.InvariantCulture)}\"}} {cumulative}\n");
        }

        cumulative += stats.LatencyBuckets[Buckets];
        b.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}\n");
        b.Append(CultureInfo.InvariantCulture, $"{name}_sum{{{labels}}} {(stats.LatencySumTicks / (double)Stopwatch.Frequency).ToString("G9", CultureInfo.InvariantCulture)}\n");
        b.Append(CultureInfo.InvariantCulture, $"{name}_count{{{labels}}} {cumulative}\n");
    }
}
