using Vop.Links.Devices;
using Vop.Links.Rings;
using Vop.Links.Stats;
using Vop.Links.Transport;
using Vop.Netstack.Capture;
using Vop.Netstack.Device;
using Vop.Netstack.Driver;
using Vop.Netstack.Tap;
using Vop.Netstack.Virtio;
using Vop.TestSupport;

namespace Vop.Netstack.Tests.Infrastructure;

/// <summary>
/// Both real net pumps over one in-process link (memfd window, eventfd doorbells, the real device-side and
/// driver-side link supervisors negotiating over the device table): host "TAP" → device pump → rings →
/// driver pump → card "TAP", and back. Both TAPs are <see cref="FramePipe"/>s.
/// </summary>
internal sealed class NetLinkRig : IDisposable
{
    public const ushort QueueSize = 64;

    private readonly InProcessLink _link = new(16 << 20);
    private readonly DeviceSideLink _deviceSide;
    private readonly DriverSideLink _driverSide;

    /// <param name="driverAccepts">Feature bits the driver side may accept (the device offers <see cref="NetFeatures.Offered"/>).</param>
    /// <param name="mtu">The MTU the device writes into its config space.</param>
    /// <param name="device">A scripted device instead of the real device pump (then <see cref="HostPipe"/> is unused).</param>
    public NetLinkRig(ulong driverAccepts = ulong.MaxValue, int mtu = 1500, IDeviceBackend? device = null)
    {
        Device = new PipeNetDevice(HostPipe.Tap, mtu);
        Driver = new PipeNetDriver(CardPipe.Tap, driverAccepts);
        _deviceSide = new DeviceSideLink("rig", _link.Device, [device ?? Device]);
        _driverSide = new DriverSideLink("rig", _ => _link.Driver, [Driver]);
        _deviceSide.Start();
        _driverSide.Start();
        Wait.Until(() => Driver.Pump is not null && _deviceSide.IsLive(0), "both ends live");
        if (device is null)
        {
            Wait.Until(() => Device.Pump is not null, "device pump started");
        }
    }

    public FramePipe HostPipe { get; } = new("host0");

    public FramePipe CardPipe { get; } = new("card0");

    public PipeNetDevice Device { get; }

    public PipeNetDriver Driver { get; }

    public ulong Negotiated => _driverSide.NegotiatedOf(0);

    public void Dispose()
    {
        _driverSide.Dispose();
        _deviceSide.Dispose();
        Driver.Stop();
        Device.Stop();
        HostPipe.Dispose();
        CardPipe.Dispose();
        _link.Dispose();
    }

    /// <summary>The device side's net device: the real <see cref="NetDevicePump"/> on a pipe.</summary>
    internal sealed class PipeNetDevice(TapDevice tap, int mtu) : IDeviceBackend
    {
        private NetDevicePump? _pump;

        public string Name => "net0";

        public DeviceType Type => DeviceType.Net;

        public ulong OfferedFeatures => NetFeatures.Offered;

        public byte[] Config => new NetConfigSpace(DevicePumpRig.Mac, true, (ushort)mtu).Encode();

        public IReadOnlyList<ushort> QueueSizes => [QueueSize, QueueSize];

        public IReadOnlyList<QueueStats> Stats { get; } = [new QueueStats("rx0", NetDropReasonNames.All), new QueueStats("tx0", NetDropReasonNames.All)];

        public CaptureRing Capture { get; } = new(1 << 20);

        public NetDevicePump? Pump => Volatile.Read(ref _pump);

        public RingErrorKind Fault => Pump?.Fault ?? RingErrorKind.None;

        public void Start(DeviceSession session)
        {
            Stop();
            var pump = new NetDevicePump(new NetDeviceOptions(Name, "host0", DevicePumpRig.Mac, mtu, QueueSize), tap, session.QueueSet(), Capture);
            pump.Start();
            Volatile.Write(ref _pump, pump);
        }

        public void Stop() => Interlocked.Exchange(ref _pump, null)?.Stop();
    }

    /// <summary>The driver side's net device: the real <see cref="NetDriverPump"/> on a pipe.</summary>
    internal sealed class PipeNetDriver(TapDevice tap, ulong accepts) : IDriverBackend
    {
        private NetDriverPump? _pump;

        public string Name => "net0";

        public DeviceType Type => DeviceType.Net;

        public IReadOnlyList<QueueStats> Stats { get; } = [new QueueStats("rx0", NetDropReasonNames.All), new QueueStats("tx0", NetDropReasonNames.All)];

        public CaptureRing Capture { get; } = new(1 << 20);

        public NetDriverPump? Pump => Volatile.Read(ref _pump);

        /// <summary>The MTU taken from the device's config space, as the real driver backend does.</summary>
        public int Mtu { get; private set; }

        public RingErrorKind Fault => Pump?.Fault ?? RingErrorKind.None;

        public ulong ChooseFeatures(DriverSlot slot) => slot.DeviceFeatures & NetFeatures.Offered & accepts;

        public void Start(DriverSession session)
        {
            Stop();
            NetConfigSpace config = NetConfigSpace.Decode(session.Slot.Config);
            Mtu = (session.Negotiated & NetFeatures.Mtu) != 0 && config.Mtu >= 68 ? config.Mtu : 1500;
            var pump = new NetDriverPump("card0", tap, session, Mtu, Capture);
            pump.Start();
            Volatile.Write(ref _pump, pump);
        }

        public void Stop() => Interlocked.Exchange(ref _pump, null)?.Stop();
    }
}
