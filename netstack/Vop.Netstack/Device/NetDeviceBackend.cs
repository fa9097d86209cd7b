using Microsoft.Extensions.Logging;
using Vop.Links.Devices;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Metrics;
using Vop.Netstack.Tap;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Device;

/// <summary>
/// The virtio-net device on the device side, bridged to a local TAP: frames read from the TAP go to the
/// driver through the receive queue, frames the driver transmits go to the TAP. The TAP exists (admin up,
/// NO-CARRIER) for the whole life of the backend; carrier follows the device being live.
/// </summary>
public sealed class NetDeviceBackend : IDeviceBackend, IDisposable
{
    private readonly NetDeviceOptions _options;
    private readonly ILogger _log;
    private readonly TapDevice _tap;
    private NetDevicePump? _pump;

    public NetDeviceBackend(NetDeviceOptions options, ILogger log)
    {
        _options = options;
        _log = log;
        Stats = [new QueueStats("rx0"), new QueueStats("tx0")];
        _tap = TapDevice.OpenForLink(options.Tap, options.Mtu);
    }

    public string Name => _options.Name;

    /// <summary>Frames mirrored for `vop capture` while one is attached.</summary>
    public Capture.CaptureRing Capture { get; } = new();

    public string TapName => _options.Tap;

    public DeviceType Type => DeviceType.Net;

    public ulong OfferedFeatures => NetFeatures.Offered;

    public byte[] Config => new NetConfig(_options.Mac, true, (ushort)_options.Mtu).Encode();

    public IReadOnlyList<ushort> QueueSizes => [_options.QueueSize, _options.QueueSize];

    public IReadOnlyList<QueueStats> Stats { get; }

    public RingErrorKind Fault => _pump?.Fault ?? RingErrorKind.None;

    /// <summary>Frames larger than the MTU (GSO super-frames) seen per direction: [to driver, from driver].</summary>
    public long[] GsoFrames => _pump?.GsoFrames ?? [0, 0];

    public void Start(DeviceSession session)
    {
        Stop();
        _tap.SetOffloads(NetFeatures.TapOffloadsTowardDriver(session.Negotiated));
        _pump = new NetDevicePump(_options, _tap, session, Stats, Capture);
        _pump.Start();
        _tap.SetCarrier(true);
        if (_log.IsEnabled(LogLevel.Information))
        {
            NetLog.Live(_log, _options.Tap, NetFeatures.Describe(session.Negotiated));
        }
    }

    public void Stop()
    {
        NetDevicePump? pump = _pump;
        if (pump is null)
        {
            return;
        }

        _tap.SetCarrier(false);
        pump.Stop();
        _pump = null;
        NetLog.PumpSummary(_log, _options.Tap, pump.BusyLoops, pump.AllocatedAfterWarmup);
    }

    public void Dispose()
    {
        Stop();
        _tap.Dispose();
    }
}
