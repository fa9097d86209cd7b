namespace Vop.Netstack;

/// <summary>Why a frame was dropped; the value indexes <c>QueueStats.Drops</c>, the name is the metric label.</summary>
public enum NetDropReason
{
    RingFull = 0,   // no buffer posted by the driver (frame left in the kernel queue)
    BadHeader = 1,  // virtio_net_hdr refused (flags, csum, gso)
    Oversize = 2,   // frame larger than the buffer or the negotiated maximum
    NoBuffer = 3,   // chain unusable (too short, wrong direction)
    PeerDown = 4,   // peer gone while frames were in flight
    TapError = 5,   // the TAP refused a write
    HeaderShort = 6, // chain shorter than the virtio_net_hdr
    NotIp = 7,      // TUN mode: a frame from the link that is neither IPv4 nor IPv6 (nor an ARP request it answers)
    OtherHost = 8,  // TUN mode: a unicast frame from the link for another MAC than the TUN end's
}

public static class NetDropReasonNames
{
    private static readonly string[] s_names = ["ring_full", "bad_hdr", "oversize", "no_buffer", "peer_down", "tap_error", "hdr_short", "not_ip", "other_host"];

    /// <summary>Every reason's label, indexed by the reason's value.</summary>
    public static IReadOnlyList<string> All => s_names;

    /// <summary>The Prometheus label value of <paramref name="reason"/>.</summary>
    public static string Label(this NetDropReason reason) => s_names[(int)reason];
}
