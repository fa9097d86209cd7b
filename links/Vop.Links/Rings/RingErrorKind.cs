namespace Vop.Links.Rings;

/// <summary>
/// Why a queue was quarantined. The numeric value indexes <c>QueueStats.RingErrors</c>; the names are
/// the <c>kind</c> label values of <c>vop_ring_errors_total</c> (reference/operations-and-hardening.md).
/// </summary>
public enum RingErrorKind
{
    None = 0,
    BadHead = 1,      // avail ring entry >= queue size
    BadNext = 2,      // descriptor next >= queue size
    Loop = 3,         // chain longer than the table (a cycle)
    Indirect = 4,     // indirect descriptor, not negotiated
    OutOfWindow = 5,  // addr/len outside the buffer region
    AvailJump = 6,    // avail idx ran more than the queue size ahead (or went backwards)
    DescOrder = 7,    // device-readable descriptor after a device-writable one
    UsedId = 8,       // used entry names a head that is not outstanding
    UsedLen = 9,      // used length larger than what was posted (counted, buffer dropped, not quarantined)
    UsedJump = 10,    // used idx ran ahead of what is outstanding
    Feature = 11,     // feature negotiation garbage
    BadLayout = 12,   // ring placement outside the window, misaligned or overlapping
    Control = 13,     // a device's control message broke its protocol (virtio-console: unknown port, bad event, oversize)
    PumpFault = 14,   // an exception escaped a pump (a bug, or a case validation missed): the device stops
    Kernel = 15,      // the kernel's vhost-net datapath reported a ring error (VHOST_SET_VRING_ERR): its own validation refused the driver's ring
}

public static class RingErrorKindNames
{
    private static readonly string[] s_names =
    [
        "none", "bad_head", "bad_next", "loop", "indirect", "out_of_window", "avail_jump",
        "desc_order", "used_id", "used_len", "used_jump", "feature", "bad_layout", "control", "pump_fault", "kernel",
    ];

    /// <summary>Every kind's label, indexed by the kind's value.</summary>
    public static IReadOnlyList<string> All => s_names;

    /// <summary>The Prometheus label value of <paramref name="kind"/>.</summary>
    public static string Label(this RingErrorKind kind) => s_names[(int)kind];
}
