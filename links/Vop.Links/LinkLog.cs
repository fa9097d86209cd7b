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

    [LoggerMessage(EventId = 103, Level = LogLevel.Error, Message = "ivshmem server {Path}: poll failed: {Error}")]
    public static partial void ServerPollFailed(ILogger logger, string path, string error);

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "ivshmem client {Path}: connected as peer {Id}, {Vectors} vectors, window {Size} bytes")]
    public static partial void ClientConnected(ILogger logger, string path, ushort id, int vectors, ulong size);

    [LoggerMessage(EventId = 111, Level = LogLevel.Warning, Message = "ivshmem client {Path}: server went away")]
    public static partial void ServerGone(ILogger logger, string path);

    [LoggerMessage(EventId = 120, Level = LogLevel.Warning, Message = "link {Link}: device {Device} queue {Queue} quarantined: {Reason}")]
    public static partial void QueueQuarantined(ILogger logger, string link, string device, string queue, string reason);
}
