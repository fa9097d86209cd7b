using Vop.Links.Doorbells;
using Vop.Links.Rings;
using Vop.Links.Windows;
using Vop.Links.Stats;

namespace Vop.Links.Tests;

/// <summary>The steady-state batch path of both roles allocates nothing.</summary>
public class AllocationTests
{
    [Fact]
    public void SteadyStateBatchesAllocateNothing()
    {
        using SharedWindow window = SharedWindow.CreateGuarded(1 << 20);
        using var kick = new EventFdDoorbell();
        using var interrupt = new EventFdDoorbell();
        var layout = new SplitRingLayout(256, 0x1000, 0x2000, 0x3000);
        var buffers = new BufferRegion(0x10000, 0x40000);
        var driver = new DriverQueue(window.Accessor, layout, buffers, true, kick, new QueueStats("tx"));
        var device = new DeviceQueue(window.Accessor, layout, buffers, true, interrupt, new QueueStats("tx"));
        device.Reset();

        RunBatches(driver, device, window, 100); // warm up: JIT, tiering
        long before = GC.GetAllocatedBytesForCurrentThread();
        RunBatches(driver, device, window, 10_000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.Equal(0, device.Stats.TotalRingErrors);
        Assert.True(device.Stats.Packets >= 10_000 * 64);
    }

    private static void RunBatches(DriverQueue driver, DeviceQueue device, SharedWindow window, int batches)
    {
        WindowAccessor w = window.Accessor;
        Span<BufferSegment> segs = stackalloc BufferSegment[4];
        Span<BufferSegment> chain = stackalloc BufferSegment[2];
        for (int b = 0; b < batches; b++)
        {
            for (int i = 0; i < 64; i++)
            {
                ulong off = 0x10000 + ((ulong)i * 2048);
                w.WriteU64(off, (ulong)i);
                chain[0] = new BufferSegment(off, 12, false);
                chain[1] = new BufferSegment(off + 12, 1500, true);
                driver.TryAdd(chain, out _);
            }

            driver.Publish();
            device.EnableNotifications();
            while (device.TryPop(segs, out DescriptorChain c))
            {
                device.CountConsumed(c.ReadableLength);
                device.PushUsed(c.Head, 100);
            }

            device.Publish();
            driver.EnableInterrupts();
            while (driver.TryReap(out UsedElement _))
            {
            }

            driver.FlushReapStats();
        }
    }
}
