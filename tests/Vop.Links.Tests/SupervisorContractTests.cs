using Vop.Links.Devices;
using Vop.Links.Doorbells;
using Vop.Links.Rings;
using Vop.Links.Stats;
using Vop.Links.Supervision;
using Vop.Links.Transport;
using Vop.Links.Windows;
using Vop.TestSupport;

namespace Vop.Links.Tests;

/// <summary>
/// Both window supervisors over one in-process link, read only through <see cref="ILinkSupervisor"/>: live
/// after negotiation, and every end of a driver-side session counted under its typed reason.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1859", Justification = "the links are read through the contract on purpose")]
public sealed class SupervisorContractTests : IDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private readonly InProcessLink _link = new(4 << 20, vectors: 8);
    private readonly Detachable _driverEnd;
    private readonly IdleDevice _device = new();
    private readonly IdleDriver _driver = new(DeviceType.RingTest);

    public SupervisorContractTests()
    {
        _driverEnd = new Detachable(_link.Driver);
    }

    public void Dispose() => _link.Dispose();

    private static bool Until(Func<bool> condition) => SpinWait.SpinUntil(condition, s_wait);

    private static long Count(ILinkSupervisor link, ResetReason reason) => link.ResetsByReason.Single(r => r.Key == reason).Value;

    [Fact]
    public void ResetReasonsExportTheLabelsTheMetricsHaveAlwaysHad()
    {
        Assert.Equal(["driver_reset", "link_down", "broken"], ResetReasons.DeviceSide.Select(r => r.Label()));
        Assert.Equal(
            ["stopping", "link_down", "peer_restart", "needs_reset", "broken", "bad_window", "negotiation", "fault"],
            ResetReasons.DriverSide.Select(r => r.Label()));
        Assert.Equal(Enum.GetValues<ResetReason>(), ResetReasons.DeviceSide.Union(ResetReasons.DriverSide).Order());
    }

    [Fact]
    public void BothSidesReportLiveDevicesAndEachOthersEpoch()
    {
        using ILinkSupervisor device = new DeviceSideLink("contract", _link.Device, [_device]);
        using ILinkSupervisor driver = new DriverSideLink("contract", _driverEnd.Connect, [_driver]);
        Assert.Equal(LinkSide.Device, device.Side);
        Assert.Equal(LinkSide.Driver, driver.Side);
        Assert.False(device.Up);
        Assert.Equal(0u, driver.PeerEpoch);
        Assert.All(driver.ResetsByReason, r => Assert.Equal(0, r.Value));

        device.Start();
        driver.Start();
        Assert.True(Until(() => device.Up && driver.Up));

        WindowAccessor w = _link.DriverWindow.Accessor;
        Assert.Equal(w.ReadU32(WindowLayout.DeviceSideState + WindowLayout.SideEpoch), driver.PeerEpoch);
        Assert.Equal(w.ReadU32(WindowLayout.DriverSideState + WindowLayout.SideEpoch), device.PeerEpoch);
        foreach (ILinkSupervisor side in new[] { device, driver })
        {
            Assert.Equal(1, side.DeviceCount);
            SupervisedDevice d = side.DeviceAt(0);
            Assert.Equal(("idle", DeviceType.RingTest, true), (d.Name, d.Type, d.Live));
            Assert.Equal((uint)(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk), d.Status);
            Assert.NotEqual(0UL, d.Features & VirtioFeatures.Version1);
            Assert.Equal(2, d.QueueCount);
            Assert.Equal(2, d.Queues.Count);
            Assert.Equal(0, side.Resets);
        }

        Assert.Same(_device.Stats[1], device.DeviceAt(0).Queues[1]);
        Assert.Same(_driver.Stats[0], driver.DeviceAt(0).Queues[0]);
    }

    [Fact]
    public void DriverCountsADepartedDeviceSideAsLinkDownAndComesBack()
    {
        using var device = new DeviceSideLink("contract", _link.Device, [_device]);
        using ILinkSupervisor driver = new DriverSideLink("contract", _driverEnd.Connect, [_driver]);
        device.Start();
        driver.Start();
        Assert.True(Until(() => driver.Up));

        _driverEnd.Attached = false;
        Assert.True(Until(() => Count(driver, ResetReason.LinkDown) == 1));
        Assert.False(driver.Up);
        Assert.False(driver.DeviceAt(0).Live);
        Assert.Equal(0u, driver.DeviceAt(0).Status);
        Assert.Equal(0u, driver.PeerEpoch);

        _driverEnd.Attached = true;
        Assert.True(Until(() => driver.Up));
        Assert.Equal(1, driver.Resets); // sessions after the first
        Assert.All(driver.ResetsByReason.Where(r => r.Key != ResetReason.LinkDown), r => Assert.Equal(0, r.Value));
    }

    [Fact]
    public void QuarantineIsBrokenOnTheDeviceSideAndNeedsResetOnTheDriverSide()
    {
        using ILinkSupervisor device = new DeviceSideLink("contract", _link.Device, [_device]);
        using ILinkSupervisor driver = new DriverSideLink("contract", _driverEnd.Connect, [_driver]);
        device.Start();
        driver.Start();
        Assert.True(Until(() => device.Up && driver.Up));

        _device.InjectFault();
        Assert.True(Until(() => Count(device, ResetReason.Broken) == 1 && Count(driver, ResetReason.NeedsReset) == 1));
        Assert.True(Until(() => device.Up && driver.Up), "the driver resets the quarantined device and negotiates again");
        Assert.Equal(0, Count(driver, ResetReason.LinkDown));
        Assert.True(Count(device, ResetReason.DriverReset) >= 1);
        Assert.Equal(device.ResetsByReason.Sum(r => r.Value), device.Resets);
    }

    [Fact]
    public void DriverWithoutAMatchingDeviceCountsNegotiationAndStaysDown()
    {
        var console = new IdleDriver(DeviceType.Console);
        using ILinkSupervisor device = new DeviceSideLink("contract", _link.Device, [_device]);
        using ILinkSupervisor driver = new DriverSideLink("contract", _driverEnd.Connect, [console]);
        device.Start();
        driver.Start();
        Assert.True(Until(() => Count(driver, ResetReason.Negotiation) >= 1));
        Assert.False(driver.Up);
        Assert.Equal(0, driver.DeviceAt(0).QueueCount); // learnt at negotiation, which never happened
        Assert.Equal(0, driver.Resets);
    }

    /// <summary>The driver's end of the in-process link with a transport presence the test switches.</summary>
    private sealed class Detachable : ILinkEnd
    {
        private readonly ILinkEnd _inner;
        private volatile bool _attached = true;

        public Detachable(ILinkEnd inner)
        {
            _inner = inner;
        }

        public bool Attached
        {
            get => _attached;
            set => _attached = value;
        }

        public SharedWindow Window => _inner.Window;

        public int VectorCount => _inner.VectorCount;

        public bool PeerAttached => _attached;

        /// <summary>As a real connect: returns once the device side is there.</summary>
        public Detachable Connect(CancellationToken cancel)
        {
            while (!_attached)
            {
                cancel.ThrowIfCancellationRequested();
                cancel.WaitHandle.WaitOne(10);
            }

            return this;
        }

        public Doorbell PeerDoorbell(int vector) => _inner.PeerDoorbell(vector);

        public EventFdDoorbell LocalDoorbell(int vector) => _inner.LocalDoorbell(vector);

        public void Dispose()
        {
        }
    }

    /// <summary>Two queue cells, no datapath; learns its queue count at negotiation.</summary>
    private sealed class IdleDriver : IDriverBackend
    {
        public IdleDriver(DeviceType type)
        {
            Type = type;
        }

        public string Name => "idle";

        public DeviceType Type { get; }

        public IReadOnlyList<QueueStats> Stats { get; } = [new QueueStats("q0"), new QueueStats("q1")];

        public int QueueCount { get; private set; }

        public ulong ChooseFeatures(DriverSlot slot) => 0;

        public void Start(DriverSession session) => QueueCount = session.Queues.Count;

        public void Stop()
        {
        }

        public RingErrorKind Fault => RingErrorKind.None;
    }
}
