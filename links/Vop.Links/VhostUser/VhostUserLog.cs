using Microsoft.Extensions.Logging;

namespace Vop.Links.VhostUser;

internal static partial class VhostUserLog
{
    [LoggerMessage(EventId = 600, Level = LogLevel.Debug, Message = "vhost-user: {Request} ({Size} bytes, {Fds} fds)")]
    public static partial void Message(ILogger logger, VhostUserRequest request, uint size, int fds);

    [LoggerMessage(EventId = 601, Level = LogLevel.Warning, Message = "vhost-user: refused {Request}: {Reason}")]
    public static partial void Refused(ILogger logger, VhostUserRequest request, string reason);

    [LoggerMessage(EventId = 602, Level = LogLevel.Information, Message = "vhost-user: guest memory mapped: {Regions} regions, {MiB} MiB of guest-physical space")]
    public static partial void Memory(ILogger logger, int regions, ulong mib);

    [LoggerMessage(EventId = 603, Level = LogLevel.Warning, Message = "vhost-user: device {Device} quarantined on vring {Ring}: {Reason}; stopped until the front-end resets the ring")]
    public static partial void Quarantined(ILogger logger, string device, int ring, string reason);

    [LoggerMessage(EventId = 604, Level = LogLevel.Information, Message = "vhost-user: front-end connected on {Socket}")]
    public static partial void Connected(ILogger logger, string socket);

    [LoggerMessage(EventId = 605, Level = LogLevel.Information, Message = "vhost-user: front-end left ({Reason})")]
    public static partial void Disconnected(ILogger logger, string reason);

    [LoggerMessage(EventId = 606, Level = LogLevel.Warning, Message = "vhost-user: refused a second front-end on {Socket} (one is connected)")]
    public static partial void Busy(ILogger logger, string socket);
}
