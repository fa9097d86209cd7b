namespace Vop.Links.Supervision;

/// <summary>
/// Why a link's session or a device's run ended; the label is <c>vop_peer_resets_total{reason}</c>
/// (docs/operations.md). The device side counts a reset the driver asked for, a departure and a quarantine;
/// the driver side counts why each of its sessions ended.
/// </summary>
public enum ResetReason
{
    DriverReset,  // device side: the driver reset a live device (status 0); vhost-user: the front-end stopped a ring
    LinkDown,     // peer gone: socket closed, heartbeat stopped, no header within 10 s, front-end disconnected
    Broken,       // a device quarantined itself here (ring or control protocol violation, pump fault)
    PeerRestart,  // driver side: the device side's epoch changed or it announced Stopped
    NeedsReset,   // driver side: the device side set NEEDS_RESET (it quarantined a device) or removed the device
    Stopping,     // driver side: we are shutting down
    BadWindow,    // driver side: refused what the device side published (device table, queue placement)
    Negotiation,  // driver side: no such device, features refused, a status write not acknowledged
    Fault,        // driver side: an unexpected exception in the session, contained
}

public static class ResetReasons
{
    /// <summary>What the device side (window or vhost-user) exports, in export order.</summary>
    public static IReadOnlyList<ResetReason> DeviceSide { get; } =
        [ResetReason.DriverReset, ResetReason.LinkDown, ResetReason.Broken];

    /// <summary>What the driver side exports, in export order.</summary>
    public static IReadOnlyList<ResetReason> DriverSide { get; } =
    [
        ResetReason.Stopping, ResetReason.LinkDown, ResetReason.PeerRestart, ResetReason.NeedsReset,
        ResetReason.Broken, ResetReason.BadWindow, ResetReason.Negotiation, ResetReason.Fault,
    ];

    /// <summary>The Prometheus label value of <paramref name="reason"/>.</summary>
    public static string Label(this ResetReason reason) => reason switch
    {
        ResetReason.DriverReset => "driver_reset",
        ResetReason.LinkDown => "link_down",
        ResetReason.Broken => "broken",
        ResetReason.PeerRestart => "peer_restart",
        ResetReason.NeedsReset => "needs_reset",
        ResetReason.Stopping => "stopping",
        ResetReason.BadWindow => "bad_window",
        ResetReason.Negotiation => "negotiation",
        ResetReason.Fault => "fault",
        _ => throw new ArgumentOutOfRangeException(nameof(reason)),
    };
}

/// <summary>Resets by reason: bumped by a supervisor's control thread, read by any thread.</summary>
public sealed class ResetCounters
{
    private readonly long[] _counts = new long[Enum.GetValues<ResetReason>().Length];
    private readonly IReadOnlyList<ResetReason> _exported;

    /// <param name="exported">The reasons <see cref="Snapshot"/> lists (the role's export order).</param>
    public ResetCounters(IReadOnlyList<ResetReason> exported)
    {
        _exported = exported;
    }

    public void Count(ResetReason reason) => Interlocked.Increment(ref _counts[(int)reason]);

    public long Of(ResetReason reason) => Interlocked.Read(ref _counts[(int)reason]);

    /// <summary>Every exported reason with its count, zeros included.</summary>
    public IReadOnlyList<KeyValuePair<ResetReason, long>> Snapshot() => [.. _exported.Select(r => KeyValuePair.Create(r, Of(r)))];

    public long Total => _exported.Sum(Of);
}
