using Vop.Links.Doorbells;
using Vop.Links.Rings;
using Vop.Links.Windows;
using Vop.Links.Stats;

namespace Vop.Links.Tests;

/// <summary>Deterministic notification suppression, single-threaded, with a counting doorbell.</summary>
public sealed class EventIdxTests : IDisposable
{
    private readonly SharedWindow _window = SharedWindow.CreateGuarded(1 << 20);
    private readonly SplitRingLayout _layout = new(64, 0x1000, 0x2000, 0x3000);
    private readonly BufferRegion _buffers = new(0x10000, 0x10000);
    private readonly CountingDoorbell _kicks = new();
    private readonly CountingDoorbell _interrupts = new();

    public void Dispose() => _window.Dispose();

    private (DriverQueue Driver, DeviceQueue Device) Make(bool eventIdx)
    {
        var driver = new DriverQueue(_window.Accessor, _layout, _buffers, eventIdx, _kicks, new QueueStats("q"));
        var device = new DeviceQueue(_window.Accessor, _layout, _buffers, eventIdx, _interrupts, new QueueStats("q"));
        device.Reset();
        return (driver, device);
    }

    [Fact]
    public void DriverKicksOnlyWhenAvailEventIsPassed()
    {
        (DriverQueue driver, DeviceQueue device) = Make(eventIdx: true);
        Assert.False(device.EnableNotifications()); // avail_event = 0: wake me at the first buffer
        for (int i = 0; i < 50; i++)
        {
            Assert.True(driver.TryAdd(new BufferSegment(0x10000 + ((ulong)i * 64), 64, false), out _));
            driver.Publish();
        }

        Assert.Equal(1, _kicks.Count);
        Assert.Equal(1, driver.Stats.NotificationsSent);
        Assert.Equal(49, driver.Stats.NotificationsSuppressed);

        // The device drains 50 and asks again: the next publish kicks once more.
        Span<BufferSegment> segs = stackalloc BufferSegment[2];
        for (int i = 0; i < 50; i++)
        {
            Assert.True(device.TryPop(segs, out DescriptorChain c));
            device.PushUsed(c.Head, 0);
        }

        Assert.False(device.EnableNotifications());
        driver.TryAdd(new BufferSegment(0x10000, 64, false), out _);
        driver.Publish();
        Assert.Equal(2, _kicks.Count);
    }

    [Fact]
    public void DeviceInterruptsOnceForABatchAndOnlyWhenAsked()
    {
        (DriverQueue driver, DeviceQueue device) = Make(eventIdx: true);
        for (int i = 0; i < 32; i++)
        {
            driver.TryAdd(new BufferSegment(0x10000 + ((ulong)i * 64), 64, true), out _);
        }

        driver.Publish();
        Span<BufferSegment> segs = stackalloc BufferSegment[2];

        // Driver has not asked (used_event stays 0 but is passed by the first publish only once).
        Assert.False(driver.EnableInterrupts());
        for (int i = 0; i < 16; i++)
        {
            device.TryPop(segs, out DescriptorChain c);
            device.PushUsed(c.Head, 10);
        }

        Assert.True(device.Publish()); // one interrupt for 16 buffers
        for (int i = 0; i < 16; i++)
        {
            device.TryPop(segs, out DescriptorChain c);
            device.PushUsed(c.Head, 10);
        }

        Assert.False(device.Publish()); // driver has not re-armed: suppressed
        Assert.Equal(1, _interrupts.Count);
        Assert.Equal(1, device.Stats.NotificationsSuppressed);

        int reaped = 0;
        while (driver.TryReap(out UsedElement u))
        {
            Assert.Equal(10u, u.Length);
            reaped++;
        }

        Assert.Equal(32, reaped);
        Assert.Equal(64, driver.FreeDescriptors);
    }

    [Fact]
    public void WithoutEventIdxTheFlagsSuppress()
    {
        (DriverQueue driver, DeviceQueue device) = Make(eventIdx: false);
        device.DisableNotifications();
        driver.TryAdd(new BufferSegment(0x10000, 64, false), out _);
        Assert.False(driver.Publish());
        Assert.True(device.EnableNotifications()); // re-armed, and the buffer is already there
        driver.TryAdd(new BufferSegment(0x10000, 64, false), out _);
        Assert.True(driver.Publish());
        Assert.Equal(1, _kicks.Count);
    }

    private sealed class CountingDoorbell : Doorbell
    {
        public int Count { get; private set; }

        public override void Ring() => Count++;
    }
}
