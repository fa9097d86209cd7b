using Microsoft.Extensions.Logging;
using Vop.Links.Devices;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Stats;
using Vop.Netstack.Capture;
using Vop.Netstack.Device;
using Vop.Netstack.Tap;
using Vop.Netstack.VhostNet;
using Vop.Netstack.Virtio;

namespace Vop.Netstack;

/// <summary>
/// What the device-side and driver-side net devices share: the TAP (admin up, NO-CARRIER) for the whole
/// life of the backend, one TAP queue per queue pair (IFF_MULTI_QUEUE when more than one), the queue cells,
/// the capture ring, and per session one pump per pair (plus, on the device side, the control queue's
/// thread) whose start turns carrier on and whose stop turns it off and logs each pump's allocation summary.
/// </summary>
public abstract class NetBackend : IDisposable
{
    private readonly ILogger _log;
    private NetPump[]? _pumps;
    private NetControlPump? _control;
    private VhostNetDevice? _kernel;

    private protected NetBackend(string name, string tapName, int mtu, int pairs, Tun.TunAddresses? tun, ILogger log)
        : this(name, tapName, TapDevice.OpenQueuesForLink(tapName, mtu, pairs, tun), log)
    {
    }

    /// <summary>Over given TAP queues (tests: frame pipes, on which the TAP-only settings are skipped); owns them.</summary>
    private protected NetBackend(string name, string tapName, TapDevice[] taps, ILogger log)
    {
        Name = name;
        TapName = tapName;
        _log = log;
        Taps = taps;
        Cells = new NetQueueCells(taps.Length);
    }

    public string Name { get; }

    public string TapName { get; }

    public DeviceType Type => DeviceType.Net;

    /// <summary>TAP or TUN: what the local interface is.</summary>
    public NetMode Mode => Taps[0].Mode;

    /// <summary>One cell per virtio queue of the device as last laid out (rx0, tx0, …, ctrl).</summary>
    public IReadOnlyList<QueueStats> Stats { get; private protected set; } = [];

    /// <summary>The link's poll mode and CPUs for the pumps of the next session.</summary>
    public PumpSettings PumpSettings { get; set; } = PumpSettings.Default;

    /// <summary>Frames mirrored for `vop capture` while one is attached.</summary>
    public CaptureRing Capture { get; } = new();

    public RingErrorKind Fault
    {
        get
        {
            if (_kernel?.Fault is RingErrorKind k && k != RingErrorKind.None)
            {
                return k;
            }

            NetControlPump? control = _control;
            if (control is not null && control.Fault != RingErrorKind.None)
            {
                return control.Fault;
            }

            foreach (NetPump p in _pumps ?? [])
            {
                if (p.Fault != RingErrorKind.None)
                {
                    return p.Fault;
                }
            }

            return RingErrorKind.None;
        }
    }

    /// <summary>The running session's pumps, one per pair (tests read their allocation accounting).</summary>
    internal IReadOnlyList<NetPump> Pumps => _pumps ?? [];

    /// <summary>The TAP's first queue: device-wide settings (carrier, MTU, MAC, offloads) go through it.</summary>
    private protected TapDevice Tap => Taps[0];

    /// <summary>The TAP's queues, one per pair.</summary>
    private protected TapDevice[] Taps { get; }

    private protected NetQueueCells Cells { get; }

    private protected ILogger Log => _log;

    /// <summary>Carrier, MTU, MAC and offloads exist on a TAP only; a frame pipe (tests) has none of them.</summary>
    private protected bool IsTap => Tap.IsTap;

    private void SetCarrier(bool on)
    {
        if (IsTap)
        {
            Tap.SetCarrier(on);
        }
    }

    /// <summary>Attaches the TAP queues of the first <paramref name="pairs"/> pairs and detaches the rest.</summary>
    private protected void AttachQueues(int pairs)
    {
        for (int q = 0; q < Taps.Length; q++)
        {
            Taps[q].SetQueueAttached(q < pairs);
        }
    }

    /// <summary>Starts a session's pumps (and control thread), then sets carrier.</summary>
    private protected void Run(NetPump[] pumps, NetControlPump? control, bool carrier, ulong negotiated)
    {
        _pumps = pumps;
        _control = control;
        foreach (NetPump p in pumps)
        {
            p.Settings = PumpSettings;
            p.Start();
            if (p.PinError != 0)
            {
                NetLog.PinFailed(_log, TapName, PumpSettings.Cpus!.ToString(), Links.Interop.Errno.Describe(p.PinError));
            }
        }

        if (control is not null)
        {
            control.Settings = PumpSettings; // its CPUs; it waits on its queue's doorbell whatever the poll mode
            control.Start();
        }
        SetCarrier(carrier);
        if (_log.IsEnabled(LogLevel.Information))
        {
            NetLog.Live(_log, TapName, NetFeatures.Describe(negotiated));
        }
    }

    /// <summary>Starts a session whose packets the kernel's vhost-net moves (no pump), then sets carrier.</summary>
    private protected void RunKernel(VhostNetDevice kernel, ulong negotiated)
    {
        _kernel = kernel;
        SetCarrier(true);
        if (_log.IsEnabled(LogLevel.Information))
        {
            NetLog.LiveKernel(_log, TapName, NetFeatures.Describe(negotiated));
        }
    }

    /// <summary>The running pumps, for the control thread to wake when it switches pairs.</summary>
    private protected void WakePumps()
    {
        foreach (NetPump p in _pumps ?? [])
        {
            p.Wake();
        }
    }

    public void Stop()
    {
        if (_kernel is VhostNetDevice kernel)
        {
            SetCarrier(false);
            _kernel = null;
            kernel.Dispose();
            NetLog.KernelStopped(_log, TapName, kernel.StoppedAt[0], kernel.StoppedAt[1]);
        }

        NetPump[]? pumps = _pumps;
        if (pumps is null)
        {
            return;
        }

        SetCarrier(false);
        _control?.Stop(); // first: it switches pairs and wakes the pumps
        foreach (NetPump p in pumps)
        {
            p.Stop();
        }

        _pumps = null;
        if (_control?.Crash is Exception controlCrash)
        {
            NetLog.PumpCrashed(_log, TapName, Links.Faults.Describe(controlCrash));
        }

        _control = null;
        foreach (NetPump pump in pumps)
        {
            if (pump.AllocatedAfterWarmup < 0)
            {
                NetLog.PumpSummaryCold(_log, TapName, pump.BusyLoops);
            }
            else
            {
                NetLog.PumpSummary(_log, TapName, pump.BusyLoops, pump.AllocatedAfterWarmup);
            }

            if (pump.WriteFallBackErrno != 0)
            {
                NetLog.WriteFallBack(_log, TapName, Links.Interop.Errno.Describe(pump.WriteFallBackErrno));
            }

            if (pump.Crash is Exception crash)
            {
                NetLog.PumpCrashed(_log, TapName, Links.Faults.Describe(crash));
            }
        }
    }

    public void Dispose()
    {
        Stop();
        foreach (TapDevice t in Taps)
        {
            t.Dispose();
        }

        GC.SuppressFinalize(this);
    }
}
