using System.Runtime.InteropServices;

namespace Vop.Appliance.Cli;

/// <summary>
/// SIGINT (Ctrl-C) and SIGTERM as a stop request, for the verbs that run in the foreground until told to
/// stop (capture, ivshmem-server, demo): the signal is taken (the process is not killed) and the verb winds
/// down and cleans up itself. A deadline (--duration) is a stop request too.
/// </summary>
internal sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly PosixSignalRegistration _interrupt;
    private readonly PosixSignalRegistration _terminate;

    public StopSignals()
    {
        _interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Take);
        _terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Take);
    }

    public bool IsSet => _stop.IsCancellationRequested;

    public void CancelAfter(TimeSpan delay) => _stop.CancelAfter(delay);

    public void Wait() => _stop.Token.WaitHandle.WaitOne();

    private void Take(PosixSignalContext context)
    {
        context.Cancel = true;
        _stop.Cancel();
    }

    public void Dispose()
    {
        _interrupt.Dispose();
        _terminate.Dispose();
        _stop.Dispose();
    }
}
