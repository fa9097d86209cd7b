using Vop.TestSupport;
using Vop.TestSupport.RingTest;

namespace Vop.Links.Tests;

/// <summary>Two ends in one process over one memfd window, each on its own threads, with content checks.</summary>
public class RoundTripTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void MillionBuffersEachWayArriveInOrderIntact(bool eventIdx)
    {
        const ulong Count = 1_000_000;
        using var link = new InProcessLink(16 << 20);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var device = new RingTestDevice(link.Device, new RingTestConfig(64, RingTestDirections.Both, Count), 256);
        device.Insert();

        IReadOnlyList<RingTestResult>? deviceResults = null;
        var deviceThread = new Thread(() => deviceResults = device.Run(cts.Token)) { Name = "test-device" };
        deviceThread.Start();
        RingTestDriver driver = RingTestDriver.Attach(link.Driver, cts.Token, eventIdx);
        IReadOnlyList<RingTestResult> driverResults = driver.Run(cts.Token);
        deviceThread.Join();

        Assert.Equal(eventIdx, (driver.Slot.NegotiatedFeatures & Transport.VirtioFeatures.EventIdx) != 0);
        foreach (RingTestResult r in driverResults.Concat(deviceResults!))
        {
            Assert.Null(r.Error);
            Assert.Equal(Count, r.Buffers);
        }

        Assert.Equal(4, driverResults.Count + deviceResults!.Count);
        // Every completed buffer was counted once, as packets, on both ends.
        Assert.Equal((long)Count, driver.ToDeviceStats.Packets);
        Assert.Equal((long)Count, driver.ToDriverStats.Packets);
        Assert.Equal((long)Count, device.ToDeviceStats.Packets);
        Assert.Equal((long)Count * 64, device.ToDeviceStats.Bytes);
        Assert.Equal(0, driver.ToDeviceStats.TotalRingErrors + driver.ToDriverStats.TotalRingErrors);
        Assert.Equal(0, device.ToDeviceStats.TotalRingErrors + device.ToDriverStats.TotalRingErrors);

        long kicks = driver.ToDeviceStats.NotificationsSent + driver.ToDriverStats.NotificationsSent;
        long interrupts = device.ToDeviceStats.NotificationsSent + device.ToDriverStats.NotificationsSent;
        if (eventIdx)
        {
            // Suppression: far fewer notifications than buffers, and every publish that did not notify was counted.
            Assert.True(kicks < (long)Count / 10, $"{kicks} kicks for {Count} buffers");
            Assert.True(interrupts < (long)Count / 10, $"{interrupts} interrupts for {Count} buffers");
            Assert.True(driver.ToDeviceStats.NotificationsSuppressed > 0);
        }
    }
}
