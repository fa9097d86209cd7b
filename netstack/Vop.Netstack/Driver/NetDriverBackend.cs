using Microsoft.Extensions.Logging;
using Vop.Links.Devices;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Metrics;
using Vop.Netstack.Tap;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Driver;

/// <summary>
/// The virtio-net driver on the driver side, bound to a local TAP: it takes MAC and MTU from the device's
/// config space, negotiates the offloads, owns the receive and transmit buffers in the window and moves
/// frames between them and the TAP. Carrier follows the device's link status and the session.
/// </summary>
public sealed class NetDriverBackend : IDriverBackend, IDisposable
{
    private readonly NetDriverOptions _options;
    private readonly ILogger _log;
    private readonly TapDevice _tap;
    private NetDriverPump? _pump;

    public NetDriverBackend(NetDriverOptions options, ILogger log)
    {
        _options = options;
        _log = log;
        Stats = [new QueueStats("rx0"), new QueueStats("tx0")];
        _tap = TapDevice.OpenForLink(options.Tap, options.FallbackMtu);
    }

    public string Name => _options.Name;

    /// <summary>Frames mirrored for `vop capture` while one is attached.</summary>
    public Capture.CaptureRing Capture { get; } = new();

    public string TapName => _options.Tap;

    public DeviceType Type => DeviceType.Net;

    public IReadOnlyList<QueueStats> Stats { get; }

    public RingErrorKind Fault => _pump?.Fault ?? RingErrorKind.None;

    public long[] GsoFrames => _pump?.GsoFrames ?? [0, 0];

    public ulong ChooseFeatures(DriverSlot slot) => slot.DeviceFeatures & NetFeatures.Offered;

    public void Start(DriverSession session)
    {
        Stop();
        if (session.Slot.Queues.Count < 2)
        {
            throw new InvalidDataException($"{_options.Name}: virtio-net device has {session.Slot.Queues.Count} queues, needs 2");
        }

        NetConfig config = NetConfig.Decode(session.Slot.Config);
        ulong f = session.Negotiated;
        int mtu = (f & NetFeatures.Mtu) != 0 && config.Mtu >= 68 ? config.Mtu : _options.FallbackMtu;
        if ((f & NetFeatures.Mac) != 0)
        {
            _tap.SetMac(config.Mac);
        }

        _tap.SetMtu(mtu);
        _tap.SetOffloads(NetFeatures.TapOffloadsTowardDevice(f));
        _pump = new NetDriverPump(_options.Tap, _tap, session, mtu, Capture);
        _pump.Start();
        _tap.SetCarrier((f & NetFeatures.Status) == 0 || config.LinkUp);
        if (_log.IsEnabled(LogLevel.Information))
        {
            NetLog.Live(_log, _options.Tap, NetFeatures.Describe(f));
        }
    }

    public void Stop()
    {
        NetDriverPump? pump = _pump;
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
