using System.Diagnostics;
using Vop.Links.Rings;
using Vop.Links.Stats;

namespace Vop.Links.Tests;

public class QueueStatsTests
{
    [Fact]
    public void ArraysAreSizedFromTheEnumsThatIndexThem()
    {
        var s = new QueueStats("rx0", ["ring_full", "bad_hdr", "oversize"]);
        Assert.Equal(Enum.GetValues<RingErrorKind>().Length, s.RingErrors.Length);
        Assert.Equal(Enum.GetValues<RingErrorKind>().Length, RingErrorKindNames.All.Count);
        Assert.Equal(3, s.Drops.Length);
        Assert.Equal("oversize", s.DropReasons[2]);
        Assert.Empty(new QueueStats("q").Drops);
    }

    [Fact]
    public void RingErrorsSumAcrossKinds()
    {
        var s = new QueueStats("rx0");
        s.RingErrors[(int)RingErrorKind.BadHead] += 2;
        s.RingErrors[(int)RingErrorKind.PumpFault]++;
        Assert.Equal(3, s.TotalRingErrors);
        Assert.Equal("rx0", s.Name);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 0)]
    [InlineData(2, 1)]
    [InlineData(3, 2)]
    [InlineData(1024, 10)]
    [InlineData(10_000_000, QueueStats.LatencyBucketCount)]
    public void LatencyLandsInTheSmallestBucketThatHoldsIt(long microseconds, int bucket)
    {
        var s = new QueueStats("q");
        s.RecordLatency(microseconds * Stopwatch.Frequency / 1_000_000, 3);
        Assert.Equal(3, s.LatencyBuckets[bucket]);
        Assert.Equal(3, s.LatencyCount);
        Assert.Equal(3, s.LatencyBuckets.Sum());
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(2, 1)]
    [InlineData(3, 2)]
    [InlineData(256, 8)]
    [InlineData(257, QueueStats.BatchSizeBucketCount)]
    public void BatchSizeLandsInTheSmallestBucketThatHoldsIt(long size, int bucket)
    {
        var s = new QueueStats("q");
        s.RecordBatch(size);
        s.RecordBatch(0);
        Assert.Equal(1, s.BatchSizeBuckets[bucket]);
        Assert.Equal(size, s.BatchSizeSum);
    }
}
