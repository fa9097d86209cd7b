namespace Vop.Links;

/// <summary>
/// A peer offered something vop will not use (shared memory that could shrink, a window file others can
/// write, an invalid window): the session is refused, <see cref="Reason"/> is counted
/// (<see cref="LinkCounters.Refusal"/>), and the message is the one log line.
/// </summary>
public sealed class LinkRefusedException : IOException
{
    public LinkRefusedException(string reason, string message)
        : base(message)
    {
        Reason = reason;
    }

    public LinkRefusedException()
    {
        Reason = string.Empty;
    }

    public LinkRefusedException(string message)
        : base(message)
    {
        Reason = string.Empty;
    }

    public LinkRefusedException(string message, Exception inner)
        : base(message, inner)
    {
        Reason = string.Empty;
    }

    /// <summary>The refusal reason label (<see cref="LinkCounters.Refusal"/>).</summary>
    public string Reason { get; }
}
