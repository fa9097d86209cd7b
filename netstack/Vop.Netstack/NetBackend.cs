using Microsoft.Extensions.Logging;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Stats;
using Vop.Netstack.Capture;
using Vop.Netstack.Tap;
using Vop.Netstack.Virtio;

namespace Vop.Netstack;

/// <summary>
/// What the device-side and driver-side net devices share: the TAP (admin up, NO-CARRIER) for the whole
/// life of the backend, the two queue cells, the capture ring, and a pump per session whose start turns
/// carrier on and whose stop turns it off and logs its allocation summary.
/// </summary>
public abstract class NetBackend : IDisposable
{
    private readonly ILogger _log;
    private NetPump? _pump;

    private protected NetBackend(string name, string tapName, int mtu, ILogger log)
    {
        Name = name;
        TapName = tapName;
        _log = log;
        Tap = TapDevice.OpenForLink(tapName, mtu);
    }

    public string Name { get; }

    public string TapName { get; }

    public DeviceType Type => DeviceType.Net;

    public IReadOnlyList<QueueStats> Stats { get; } = [new QueueStats("rx0", NetDropReasonNames.All), new QueueStats("tx0", NetDropReasonNames.All)];

    /// <summary>Frames mirrored for `vop capture` while one is attached.</summary>
    public CaptureRing Capture { get; } = new();

    public RingErrorKind Fault => _pump?.Fault ?? RingErrorKind.None;

    private protected TapDevice Tap { get; }

    private protected ILogger Log => _log;

    /// <summary>Starts a session's pump, then sets carrier.</summary>
    private protected void Run(NetPump pump, bool carrier, ulong negotiated)
    {
        _pump = pump;
        pump.Start();
        Tap.SetCarrier(carrier);
        if (_log.IsEnabled(LogLevel.Information))
        {
            NetLog.Live(_log, TapName, NetFeatures.Describe(negotiated));
        }
    }

    public void Stop()
    {
        NetPump? pump = _pump;
        if (pump is null)
        {
            return;
        }

        Tap.SetCarrier(false);
        pump.Stop();
        _pump = null;
        if (pump.AllocatedAfterWarmup < 0)
        {
            NetLog.PumpSummaryCold(_log, TapName, pump.BusyLoops);
        }
        else
        {
            NetLog.PumpSummary(_log, TapName, pump.BusyLoops, pump.AllocatedAfterWarmup);
        }

        if (pump.Crash is Exception crash)
        {
            NetLog.PumpCrashed(_log, TapName, Links.Faults.Describe(crash));
        }
    }

    public void Dispose()
    {
        Stop();
        Tap.Dispose();
        GC.SuppressFinalize(this);
    }
}
