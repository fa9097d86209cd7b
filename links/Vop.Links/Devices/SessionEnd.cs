using Vop.Links.Supervision;

namespace Vop.Links.Devices;

/// <summary>
/// A driver-side session's end: why (counted as <c>vop_peer_resets_total{reason}</c>, one of
/// <see cref="ResetReasons.DriverSide"/>), the one log line, and the refusal it counts as (a
/// <see cref="LinkCounters.Refusal"/> label) if any. The reason is set where the end is detected and
/// carried as is to the counters; nothing is derived from the log line.
/// </summary>
public readonly record struct SessionEnd(ResetReason Reason, string Detail, string? Refusal = null)
{
    /// <summary>
    /// A refusal or failure that would repeat on every retry (bad window, negotiation, a contained fault):
    /// logged once as a problem, not on every retry, and retried after a pause.
    /// </summary>
    public bool RepeatsOnRetry => Reason is ResetReason.BadWindow or ResetReason.Negotiation or ResetReason.Fault;
}
