namespace Vop.Links.Devices;

/// <summary>Why a driver-side session ended; the label is <c>vop_peer_resets_total{reason}</c> on the driver side.</summary>
public enum SessionEndReason
{
    Stopping,     // we are shutting down
    LinkDown,     // device side gone: socket closed, heartbeat stopped, no header within 10 s
    PeerRestart,  // device side's epoch changed or it announced Stopped
    NeedsReset,   // device side set NEEDS_RESET (it quarantined a device) or removed the device
    Broken,       // a device quarantined itself here (ring or control protocol violation, pump fault)
    BadWindow,    // refused what the device side published: device table or queue placement
    Negotiation,  // no such device, features refused, a status write not acknowledged
    Fault,        // an unexpected exception in the session, contained
}

/// <summary>A session's end: the reason, the one log line, and the refusal it counts as (a <see cref="LinkCounters.Refusal"/> label) if any.</summary>
public readonly record struct SessionEnd(SessionEndReason Reason, string Detail, string? Refusal = null);

public static class SessionEnds
{
    private static readonly string[] s_labels =
        ["stopping", "link_down", "peer_restart", "needs_reset", "broken", "bad_window", "negotiation", "fault"];

    public static int Count => s_labels.Length;

    public static string Label(this SessionEndReason reason) => s_labels[(int)reason];
}
