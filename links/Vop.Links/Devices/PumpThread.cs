using Vop.Links.Doorbells;

namespace Vop.Links.Devices;

/// <summary>
/// A device's datapath on one dedicated, named thread: start, a stop doorbell the loop's epoll watches,
/// an idempotent stop that joins, and the hot path's allocation accounting (bytes the thread allocated
/// after its first 1,000 busy loops, which must stay 0). The thread is an exception boundary: anything
/// that escapes the loop (a bug, or a peer's trick that validation missed) ends this pump as a
/// <see cref="Crash"/>, which the device reports as a quarantine; it never ends the process.
/// </summary>
public abstract class PumpThread : IDisposable
{
    private readonly string _threadName;
    private readonly ManualResetEventSlim _pinned = new();
    private Thread? _thread;
    private volatile bool _stopping;
    private long _warmAllocated = -1;
    private Exception? _crash;

    protected PumpThread(string threadName)
    {
        _threadName = threadName;
    }

    /// <summary>Rung by <see cref="Stop"/>; the loop adds it to its epoll set.</summary>
    protected EventFdDoorbell StopBell { get; } = new();

    protected bool Stopping => _stopping;

    /// <summary>What ended the loop by escaping it, or null.</summary>
    public Exception? Crash => Volatile.Read(ref _crash);

    /// <summary>Bytes allocated by the pump thread after warm-up; -1 until warm.</summary>
    public long AllocatedAfterWarmup { get; private set; } = -1;

    public long BusyLoops { get; private set; }

    /// <summary>The link's poll mode and CPUs; set before <see cref="Start"/>.</summary>
    public PumpSettings Settings { get; set; } = PumpSettings.Default;

    /// <summary>The kernel's errno when pinning to <see cref="PumpSettings.Cpus"/> failed (the pump then runs unpinned); 0 otherwise.</summary>
    public int PinError { get; private set; }

    /// <summary>Starts the thread; with CPUs to pin to, returns once it has pinned itself (or failed to: <see cref="PinError"/>).</summary>
    public void Start()
    {
        _thread = new Thread(RunGuarded) { Name = _threadName, IsBackground = true };
        _thread.Start();
        if (Settings.Cpus is not null)
        {
            _pinned.Wait();
        }
    }

    public void Stop()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        StopBell.Ring();
        _thread?.Join();
        StopBell.Dispose();
        _pinned.Dispose();
        OnStopped();
    }

    public void Dispose()
    {
        Stop();
        GC.SuppressFinalize(this);
    }

    private void RunGuarded()
    {
        try
        {
            try
            {
                if (Settings.Cpus is CpuSet cpus && !cpus.PinCurrentThread(out int errno))
                {
                    PinError = errno;
                }
            }
            finally
            {
                _pinned.Set();
            }

            Run();
        }
        catch (Exception e)
        {
            OnCrash(e);
            Volatile.Write(ref _crash, e);
        }
    }

    /// <summary>Runs on the pump thread when the loop threw: count it where the device's counters live.</summary>
    protected virtual void OnCrash(Exception e)
    {
    }

    /// <summary>The loop; returns when <see cref="Stopping"/> or on a quarantine.</summary>
    protected abstract void Run();

    /// <summary>Runs on the stopping thread after the pump thread has ended.</summary>
    protected virtual void OnStopped()
    {
    }

    /// <summary>Call from the pump thread once per loop that moved something.</summary>
    protected void CountBusyLoop()
    {
        if (++BusyLoops == 1000)
        {
            _warmAllocated = GC.GetAllocatedBytesForCurrentThread();
        }
        else if (_warmAllocated >= 0)
        {
            AllocatedAfterWarmup = GC.GetAllocatedBytesForCurrentThread() - _warmAllocated;
        }
    }
}
