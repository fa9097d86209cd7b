using System.Diagnostics;
using System.Globalization;
using System.Text;
using Vop.Links.Stats;

namespace Vop.Metrics;

/// <summary>
/// Exports a queue cell's latency buckets (1 µs · 2^i, kept by the pump thread, see
/// <see cref="QueueStats.RecordLatency"/>) as a Prometheus histogram in seconds.
/// </summary>
public static class LatencyHistogram
{
    /// <summary>Upper bound of bucket <paramref name="i"/> in seconds.</summary>
    public static double UpperBoundSeconds(int i) => Math.Pow(2, i) / 1e6;

    /// <summary>Appends the text exposition of one queue's histogram (cumulative buckets, +Inf, sum, count).</summary>
    public static void Write(StringBuilder b, string name, string labels, QueueStats stats)
    {
        long cumulative = 0;
        for (int i = 0; i < QueueStats.LatencyBucketCount; i++)
        {
            cumulative += stats.LatencyBuckets[i];
            b.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{labels},le=\"{UpperBoundSeconds(i).ToString("G6", CultureInfo.InvariantCulture)}\"}} {cumulative}\n");
        }

        cumulative += stats.LatencyBuckets[QueueStats.LatencyBucketCount];
        b.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}\n");
        b.Append(CultureInfo.InvariantCulture, $"{name}_sum{{{labels}}} {(stats.LatencySumTicks / (double)Stopwatch.Frequency).ToString("G9", CultureInfo.InvariantCulture)}\n");
        b.Append(CultureInfo.InvariantCulture, $"{name}_count{{{labels}}} {cumulative}\n");
    }
}
