using System.Diagnostics;
using Vop.Links.Devices;
using Vop.Links.Doorbells;
using Vop.Links.Interop;
using Vop.Links.Rings;
using Vop.Links.Stats;
using Vop.Netstack.Tap;

namespace Vop.Netstack;

/// <summary>
/// What the device-side and driver-side net pumps share: the epoll set (TAP, the two queue doorbells, stop),
/// the poll window after work, and the sleep that watches the TAP only while there is a buffer for it.
/// </summary>
internal abstract class NetPump : PumpThread
{
    // Adaptive mode: after traffic, keep polling this long before sleeping: a reply usually comes back
    // sooner than an eventfd wake-up takes (tens of microseconds here), so request/response latency skips
    // two wakes. An idle pump sleeps: the spin only follows work.
    private static readonly long s_pollTicks = PollWindow.Ticks;

    private readonly EventFdDoorbell _rxBell;
    private readonly EventFdDoorbell _txBell;
    private readonly QueueStats _rxStats;
    private readonly QueueStats _txStats;
    private readonly EventFdDoorbell _wake = new();
    private long _lastWork;
    private bool _tapInterest = true;
    private PollMode _poll;

    protected NetPump(string tapName, int pair, TapDevice tap, EventFdDoorbell rxBell, EventFdDoorbell txBell, QueueStats rxStats, QueueStats txStats)
        : base(pair == 0 ? $"vop-net-{tapName}" : $"vop-net-{tapName}-{pair}")
    {
        Tap = tap;
        _rxBell = rxBell;
        _txBell = txBell;
        _rxStats = rxStats;
        _txStats = txStats;
    }

    protected TapDevice Tap { get; }

    /// <summary>None while healthy; the first quarantine reason of either queue, or a crash of the pump.</summary>
    public RingErrorKind Fault => Crash is not null ? RingErrorKind.PumpFault : QueueFault;

    /// <summary>The first quarantine reason of either queue.</summary>
    protected abstract RingErrorKind QueueFault { get; }

    protected override void OnCrash(Exception e) => _rxStats.RingErrors[(int)RingErrorKind.PumpFault]++;

    /// <summary>The pump thread's epoll set; starts the poll window.</summary>
    protected Epoll OpenEpoll()
    {
        var epoll = new Epoll(8);
        epoll.Add(Tap.Fd);
        epoll.Add(_rxBell.Fd);
        epoll.Add(_txBell.Fd);
        epoll.Add(StopBell.Fd);
        epoll.Add(_wake.Fd);
        _poll = Settings.Poll;
        _lastWork = Stopwatch.GetTimestamp();
        return epoll;
    }

    /// <summary>After a pass that moved <paramref name="moved"/> buffers: true to loop again without arming notifications.</summary>
    protected bool KeepPolling(int moved)
    {
        if (moved != 0)
        {
            _lastWork = Stopwatch.GetTimestamp();
            CountBusyLoop();
            return true;
        }

        // Busy: never arm notifications nor sleep (the peer then never needs to ring us either). The yield
        // hands the core to any runnable thread (on a small machine, the very processes the traffic is for).
        if (_poll == PollMode.Busy || (_poll == PollMode.Adaptive && Stopwatch.GetTimestamp() - _lastWork < s_pollTicks))
        {
            Thread.Yield();
            return true;
        }

        return false;
    }

    /// <summary>
    /// Notifications are armed: watch the TAP only if <paramref name="wantTap"/>, and sleep unless it may
    /// still hold frames (the last read did not come back empty).
    /// </summary>
    protected void Sleep(Epoll epoll, bool wantTap, bool tapEmpty)
    {
        if (wantTap != _tapInterest)
        {
            epoll.SetReadable(Tap.Fd, wantTap);
            _tapInterest = wantTap;
        }

        if (wantTap && !tapEmpty)
        {
            return;
        }

        int ready = epoll.Wait(1000);
        for (int i = 0; i < ready; i++)
        {
            int fd = epoll.ReadyFd(i);
            if (fd == _rxBell.Fd)
            {
                _rxBell.Drain();
                _rxStats.DoorbellsReceived++;
            }
            else if (fd == _txBell.Fd)
            {
                _txBell.Drain();
                _txStats.DoorbellsReceived++;
            }
            else if (fd == _wake.Fd)
            {
                _wake.Drain();
            }
        }
    }

    /// <summary>Wakes the pump from its sleep to look again (its pair was switched on or off).</summary>
    public void Wake() => _wake.Ring();

    protected override void OnStopped() => _wake.Dispose();
}
