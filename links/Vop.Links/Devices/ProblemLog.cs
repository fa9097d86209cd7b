using Microsoft.Extensions.Logging;

namespace Vop.Links.Devices;

/// <summary>
/// A problem that repeats on every retry (a refused window, a peer that keeps breaking the handshake) is
/// logged once as a warning, again only when it changes or after a minute, so a hostile or broken peer
/// cannot flood the journal. Used by one control thread.
/// </summary>
internal sealed class ProblemLog
{
    private const long RepeatMs = 60_000;
    private readonly ILogger _log;
    private readonly string _link;
    private string? _last;
    private long _loggedAt;

    public ProblemLog(ILogger log, string link)
    {
        _log = log;
        _link = link;
    }

    /// <summary>Logs <paramref name="message"/> unless it is the one logged last, within the minute; true when logged.</summary>
    public bool Report(string message)
    {
        if (message == _last && Environment.TickCount64 - _loggedAt < RepeatMs)
        {
            return false;
        }

        _last = message;
        _loggedAt = Environment.TickCount64;
        LinkLog.DriverSideProblem(_log, _link, message);
        return true;
    }

    /// <summary>The problem is over (a session started): its next occurrence is news again.</summary>
    public void Clear() => _last = null;
}
