using Microsoft.Extensions.Logging;

namespace Vop.Netstack;

internal static partial class NetLog
{
    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "tap {Tap}: carrier on, features {Features}")]
    public static partial void Live(ILogger logger, string tap, string features);

    [LoggerMessage(EventId = 201, Level = LogLevel.Warning, Message = "tap {Tap}: pump stopped: {Reason}")]
    public static partial void PumpFailed(ILogger logger, string tap, string reason);

    [LoggerMessage(EventId = 205, Level = LogLevel.Warning, Message = "tap {Tap}: the device offers MTU {Offered}, above a TAP's largest ({Max}); using {Max}")]
    public static partial void MtuClamped(ILogger logger, string tap, int offered, int max);

    [LoggerMessage(EventId = 204, Level = LogLevel.Error, Message = "tap {Tap}: pump crashed, device stopped: {Error}")]
    public static partial void PumpCrashed(ILogger logger, string tap, string error);

    [LoggerMessage(EventId = 203, Level = LogLevel.Information, Message = "tap {Tap}: pump stopped after {BusyLoops} busy loops (fewer than the 1000 warm-up loops: allocation not measured)")]
    public static partial void PumpSummaryCold(ILogger logger, string tap, long busyLoops);

    [LoggerMessage(EventId = 208, Level = LogLevel.Information, Message = "tap {Tap}: carrier on, features {Features}, datapath vhost-net (the kernel moves the packets; no vop pump runs)")]
    public static partial void LiveKernel(ILogger logger, string tap, string features);

    [LoggerMessage(EventId = 209, Level = LogLevel.Information, Message = "tap {Tap}: vhost-net stopped at receive ring {Rx}, transmit ring {Tx}")]
    public static partial void KernelStopped(ILogger logger, string tap, ushort rx, ushort tx);

    [LoggerMessage(EventId = 202, Level = LogLevel.Information, Message = "tap {Tap}: pump stopped after {BusyLoops} busy loops; allocated {Bytes} bytes after warm-up")]
    public static partial void PumpSummary(ILogger logger, string tap, long busyLoops, long bytes);

    [LoggerMessage(EventId = 206, Level = LogLevel.Warning, Message = "tap {Tap}: could not pin the pump to CPUs {Cpus} ({Error}); it runs on any CPU")]
    public static partial void PinFailed(ILogger logger, string tap, string cpus, string error);

    [LoggerMessage(EventId = 207, Level = LogLevel.Warning, Message = "tap {Tap}: io_uring writes failed ({Error}) where writev worked; the pump wrote frame by frame")]
    public static partial void WriteFallBack(ILogger logger, string tap, string error);
}
