namespace Vop.Metrics.Tests;

public class QueueStatsTests
{
    [Fact]
    public void RingErrorsSumAcrossKinds()
    {
        var s = new QueueStats("rx0");
        s.RingErrors[1] += 2;
        s.RingErrors[QueueStats.RingErrorKinds - 1]++;
        Assert.Equal(3, s.TotalRingErrors);
        Assert.Equal("rx0", s.Name);
    }
}
