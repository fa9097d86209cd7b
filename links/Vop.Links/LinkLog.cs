using Microsoft.Extensions.Logging;

namespace Vop.Links;

/// <summary>Every log line the links layer writes, with fixed event ids.</summary>
internal static partial class LinkLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "ivshmem server {Path}: peer {Id} connected")]
    public static partial void PeerConnected(ILogger logger, string path, ushort id);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "ivshmem server {Path}: peer {Id} disconnected")]
    public static partial void PeerDisconnected(ILogger logger, string path, ushort id);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "ivshmem server {Path}: client setup failed: {Error}")]
    public static partial void ClientSetupFailed(ILogger logger, string path, string error);

    [LoggerMessage(EventId = 104, Level = LogLevel.Warning, Message = "ivshmem server {Path}: refused a client (pid {Pid}): {Max} peer(s) already connected, as many as it serves (a vop link: one driver side)")]
    public static partial void ClientRefused(ILogger logger, string path, int pid, int max);

    [LoggerMessage(EventId = 103, Level = LogLevel.Error, Message = "ivshmem server {Path}: poll failed: {Error}")]
    public static partial void ServerPollFailed(ILogger logger, string path, string error);

    [LoggerMessage(EventId = 105, Level = LogLevel.Error, Message = "{Thread}: unexpected fault, contained: {Error}")]
    public static partial void ThreadFault(ILogger logger, string thread, string error);

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "ivshmem client {Path}: connected as peer {Id}, {Vectors} vectors, window {Size} bytes")]
    public static partial void ClientConnected(ILogger logger, string path, ushort id, int vectors, ulong size);

    [LoggerMessage(EventId = 111, Level = LogLevel.Warning, Message = "ivshmem client {Path}: server went away")]
    public static partial void ServerGone(ILogger logger, string path);

    [LoggerMessage(EventId = 120, Level = LogLevel.Warning, Message = "link {Link}: device {Device} queue {Queue} quarantined: {Reason}")]
    public static partial void QueueQuarantined(ILogger logger, string link, string device, string queue, string reason);

    [LoggerMessage(EventId = 130, Level = LogLevel.Information, Message = "link {Link}: device {Device} live, features 0x{Features:x}")]
    public static partial void DeviceLive(ILogger logger, string link, string device, ulong features);

    [LoggerMessage(EventId = 131, Level = LogLevel.Warning, Message = "link {Link}: device {Device} negotiation: {Outcome}")]
    public static partial void NegotiationFailed(ILogger logger, string link, string device, string outcome);

    [LoggerMessage(EventId = 132, Level = LogLevel.Warning, Message = "link {Link}: device {Device} quarantined (NEEDS_RESET): {Reason}")]
    public static partial void DeviceQuarantined(ILogger logger, string link, string device, string reason);

    [LoggerMessage(EventId = 133, Level = LogLevel.Information, Message = "link {Link}: driver side left; window laid out afresh")]
    public static partial void DriverSideLeft(ILogger logger, string link);

    [LoggerMessage(EventId = 134, Level = LogLevel.Warning, Message = "link {Link}: driver side's heartbeat stood still for {Ms} ms; taking it as gone")]
    public static partial void DriverSideSilent(ILogger logger, string link, long ms);

    [LoggerMessage(EventId = 135, Level = LogLevel.Warning, Message = "link {Link}: {What} was overwritten by someone else; rewritten as the device side wrote it")]
    public static partial void WindowRepaired(ILogger logger, string link, string what);

    [LoggerMessage(EventId = 140, Level = LogLevel.Information, Message = "link {Link}: attached to device side (epoch {Epoch:x8})")]
    public static partial void Attached(ILogger logger, string link, uint epoch);

    [LoggerMessage(EventId = 141, Level = LogLevel.Information, Message = "link {Link}: session ended: {Reason}")]
    public static partial void SessionEnded(ILogger logger, string link, string reason);

    [LoggerMessage(EventId = 142, Level = LogLevel.Warning, Message = "link {Link}: {Message}")]
    public static partial void DriverSideProblem(ILogger logger, string link, string message);
}
