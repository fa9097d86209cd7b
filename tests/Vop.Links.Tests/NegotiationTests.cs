using Vop.Links.Transport;
using Vop.Links.Windows;

namespace Vop.Links.Tests;

/// <summary>The virtio status sequence across the device table (virtio 1.2 section 3.1.1), both roles in one window.</summary>
public sealed class NegotiationTests : IDisposable
{
    private const ulong Offered = VirtioFeatures.Version1 | VirtioFeatures.EventIdx | 0b101;
    private readonly SharedWindow _window = SharedWindow.CreateGuarded(1 << 20);
    private readonly WindowGeometry _geometry;
    private readonly DeviceSlot _device;

    public NegotiationTests()
    {
        WindowAccessor w = _window.Accessor;
        _geometry = WindowHeader.Initialize(w, 64 * 1024);
        var rings = new RingAreaAllocator(_geometry);
        _device = new DeviceSlot(w, 2, DeviceType.Net, Offered, [rings.Allocate(64), rings.Allocate(64)], [1, 2]);
        _device.Insert([1, 2, 3, 4, 5, 6]);
    }

    public void Dispose() => _window.Dispose();

    private DriverSlot Discover()
    {
        DriverSlot? slot = DriverSlot.TryDiscover(_window.Accessor, _geometry, 2, 4, out string? error);
        Assert.Null(error);
        return Assert.IsType<DriverSlot>(slot);
    }

    [Fact]
    public void HappyPathReachesDriverOk()
    {
        DriverSlot driver = Discover();
        Assert.Equal(DeviceType.Net, driver.Type);
        Assert.Equal(Offered, driver.DeviceFeatures);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6 }, driver.Config);
        Assert.Equal(2, driver.Queues.Count);

        Assert.True(driver.BeginNegotiation(VirtioFeatures.Version1 | VirtioFeatures.EventIdx | 1));
        Assert.False(driver.Acknowledged);
        Assert.Equal(SlotEvent.FeaturesAccepted, _device.Poll());
        Assert.True(driver.Acknowledged);
        Assert.True(driver.FeaturesAccepted);
        Assert.Equal(VirtioFeatures.Version1 | VirtioFeatures.EventIdx | 1, _device.NegotiatedFeatures);

        driver.SetDriverOk();
        Assert.Equal(SlotEvent.DriverOk, _device.Poll());
        Assert.True(_device.IsLive);
        Assert.Equal(SlotEvent.None, _device.Poll());
    }

    [Fact]
    public void UnofferedFeatureBitsAreRefused()
    {
        DriverSlot driver = Discover();
        driver.WriteStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver);
        _device.Poll();
        _window.Accessor.WriteU64(WindowLayout.Slot(2) + WindowLayout.SlotDriverFeatures, Offered | (1UL << 40));
        driver.WriteStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk);
        Assert.Equal(SlotEvent.FeaturesRefused, _device.Poll());
        Assert.True(driver.Acknowledged);
        Assert.False(driver.FeaturesAccepted);
        Assert.Equal(1, _device.FeatureErrors);
    }

    [Fact]
    public void FeaturesWithoutVersion1AreRefused()
    {
        DriverSlot driver = Discover();
        _window.Accessor.WriteU64(WindowLayout.Slot(2) + WindowLayout.SlotDriverFeatures, VirtioFeatures.EventIdx);
        driver.WriteStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk);
        Assert.Equal(SlotEvent.FeaturesRefused, _device.Poll());
        Assert.False(driver.FeaturesAccepted);
    }

    [Fact]
    public void FeatureWritesAfterFeaturesOkAreIgnored()
    {
        DriverSlot driver = Discover();
        driver.BeginNegotiation(VirtioFeatures.Version1);
        _device.Poll();
        _window.Accessor.WriteU64(WindowLayout.Slot(2) + WindowLayout.SlotDriverFeatures, Offered);
        driver.SetDriverOk();
        Assert.Equal(SlotEvent.DriverOk, _device.Poll());
        Assert.Equal(VirtioFeatures.Version1, _device.NegotiatedFeatures);
    }

    [Fact]
    public void DriverOkBeforeFeaturesOkBreaksTheDevice()
    {
        DriverSlot driver = Discover();
        driver.WriteStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.DriverOk);
        Assert.Equal(SlotEvent.Failed, _device.Poll());
        Assert.True(driver.NeedsReset);
        Assert.False(_device.IsLive);
    }

    [Fact]
    public void ClearingABitWithoutResetBreaksTheDevice()
    {
        DriverSlot driver = Discover();
        driver.BeginNegotiation(VirtioFeatures.Version1);
        _device.Poll();
        driver.WriteStatus(VirtioStatus.Acknowledge);
        Assert.Equal(SlotEvent.Failed, _device.Poll());
        Assert.True((driver.DeviceStatus & VirtioStatus.NeedsReset) != 0);
    }

    [Fact]
    public void ResetIsAFenceAndAllowsRenegotiation()
    {
        DriverSlot driver = Discover();
        driver.BeginNegotiation(VirtioFeatures.Version1 | VirtioFeatures.EventIdx);
        _device.Poll();
        driver.SetDriverOk();
        _device.Poll();
        uint generation = _window.Accessor.ReadU32(WindowLayout.Slot(2) + WindowLayout.SlotDeviceGeneration);

        driver.Reset();
        Assert.Equal(SlotEvent.Reset, _device.Poll());
        Assert.Equal(VirtioStatus.Reset, driver.DeviceStatus);
        Assert.Equal(0UL, _device.NegotiatedFeatures);
        Assert.NotEqual(generation, _window.Accessor.ReadU32(WindowLayout.Slot(2) + WindowLayout.SlotDeviceGeneration));

        driver.BeginNegotiation(VirtioFeatures.Version1);
        Assert.Equal(SlotEvent.FeaturesAccepted, _device.Poll());
        driver.SetDriverOk();
        Assert.Equal(SlotEvent.DriverOk, _device.Poll());
        Assert.Equal(VirtioFeatures.Version1, _device.NegotiatedFeatures);
    }

    [Fact]
    public void NeedsResetIsSeenByTheDriverAndClearedByReset()
    {
        DriverSlot driver = Discover();
        driver.BeginNegotiation(VirtioFeatures.Version1);
        _device.Poll();
        driver.SetDriverOk();
        _device.Poll();
        _device.RequestReset();
        Assert.True(driver.NeedsReset);
        Assert.False(_device.IsLive);
        driver.SetDriverOk();
        Assert.Equal(SlotEvent.None, _device.Poll());
        driver.Reset();
        Assert.Equal(SlotEvent.Reset, _device.Poll());
        Assert.False(driver.NeedsReset);
    }

    [Fact]
    public void ConfigChangesAreReadConsistently()
    {
        DriverSlot driver = Discover();
        _device.UpdateConfig([9, 9, 9, 9, 9, 9]);
        Assert.True(driver.RefreshConfig());
        Assert.Equal(new byte[] { 9, 9, 9, 9, 9, 9 }, driver.Config);
    }

    [Fact]
    public void EmptySlotIsNotADevice()
    {
        Assert.Null(DriverSlot.TryDiscover(_window.Accessor, _geometry, 0, 4, out string? error));
        Assert.Null(error);
    }

    [Theory]
    [InlineData(WindowLayout.QueueSize, 6UL, "power of two")]
    [InlineData(WindowLayout.QueueSize, 0UL, "power of two")]
    [InlineData(WindowLayout.QueueDescOffset, 0xFFFFFFFFFFFFF000UL, "outside the window")]
    [InlineData(WindowLayout.QueueUsedOffset, 0x3001UL, "misaligned")]
    [InlineData(WindowLayout.QueueVector, 9UL, "vector")]
    public void HostileDeviceTableIsRejectedAtDiscovery(ulong field, ulong value, string expected)
    {
        ulong e = WindowLayout.QueueEntry(2, 1) + field;
        WindowAccessor w = _window.Accessor;
        if (field is WindowLayout.QueueSize or WindowLayout.QueueVector)
        {
            w.WriteU16(e, (ushort)value);
        }
        else
        {
            w.WriteU64(e, value);
        }

        Assert.Null(DriverSlot.TryDiscover(w, _geometry, 2, 4, out string? error));
        Assert.Contains(expected, error);
    }

    [Fact]
    public void OverlappingQueuesAreRejected()
    {
        WindowAccessor w = _window.Accessor;
        ulong q0 = WindowLayout.QueueEntry(2, 0);
        ulong q1 = WindowLayout.QueueEntry(2, 1);
        w.WriteU64(q1 + WindowLayout.QueueDescOffset, w.ReadU64(q0 + WindowLayout.QueueDescOffset));
        Assert.Null(DriverSlot.TryDiscover(w, _geometry, 2, 4, out string? error));
        Assert.Contains("overlap", error);
    }

    [Fact]
    public void ImpossibleQueueCountIsRejected()
    {
        _window.Accessor.WriteU16(WindowLayout.Slot(2) + WindowLayout.SlotQueueCount, 17);
        Assert.Null(DriverSlot.TryDiscover(_window.Accessor, _geometry, 2, 4, out string? error));
        Assert.Contains("queue count", error);
    }
}
