using System.Diagnostics;
using System.Text;
using Vop.Links.Stats;

namespace Vop.Metrics.Tests;

public class LatencyHistogramTests
{
    [Fact]
    public void WritesCumulativeBucketsInSecondsWithInfSumAndCount()
    {
        var s = new QueueStats("rx0");
        s.RecordLatency(Stopwatch.Frequency / 1_000_000, 2); // 1 µs → bucket 0
        s.RecordLatency(Stopwatch.Frequency * 10);           // 10 s → +Inf
        var b = new StringBuilder();
        LatencyHistogram.Write(b, "vop_x_seconds", "link=\"l\"", s);
        string text = b.ToString();
        Assert.Contains("vop_x_seconds_bucket{link=\"l\",le=\"1E-06\"} 2\n", text, StringComparison.Ordinal);
        Assert.Contains("vop_x_seconds_bucket{link=\"l\",le=\"1.04858\"} 2\n", text, StringComparison.Ordinal);
        Assert.Contains("vop_x_seconds_bucket{link=\"l\",le=\"+Inf\"} 3\n", text, StringComparison.Ordinal);
        Assert.Contains("vop_x_seconds_count{link=\"l\"} 3\n", text, StringComparison.Ordinal);
        Assert.Equal(QueueStats.LatencyBucketCount + 3, text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }
}
