namespace Vop.Netstack.Tun;

/// <summary>
/// The Ethernet addresses a TUN end uses on the link, shared by its queues. <see cref="Own"/> is the source
/// of every frame it sends and the MAC its ARP and neighbour advertisements give; <see cref="Peer"/> the
/// destination of every frame it sends: what the session starts from (the driver's config-space MAC on the
/// device side, broadcast on the driver side), then the source of the last unicast-sourced frame the peer sent.
/// Both are 48-bit values in one word each, read and written whole (no torn MACs between queues).
/// </summary>
public sealed class TunAddresses
{
    private long _own;
    private long _peer;

    public TunAddresses(ulong own, ulong peer)
    {
        _own = (long)own;
        _peer = (long)peer;
    }

    public ulong Own => (ulong)Volatile.Read(ref _own);

    public ulong Peer => (ulong)Volatile.Read(ref _peer);

    /// <summary>A device-side TUN end: it answers with a MAC derived from the config-space MAC and sends to that MAC (the driver's).</summary>
    public static TunAddresses ForDevice(ReadOnlySpan<byte> configMac) => new(Ethernet.DerivedFrom(configMac), Ethernet.Mac(configMac));

    /// <summary>A new session: own and starting peer address (the driver side learns its own from the config space).</summary>
    public void Reset(ulong own, ulong peer)
    {
        Volatile.Write(ref _own, (long)own);
        Volatile.Write(ref _peer, (long)peer);
    }

    /// <summary>The peer sent a frame from <paramref name="source"/>: frames go there from now on (unicast, non-zero only).</summary>
    public void Learn(ulong source)
    {
        if (source != 0 && !Ethernet.IsGroup(source) && source != (ulong)Volatile.Read(ref _peer))
        {
            Volatile.Write(ref _peer, (long)source);
        }
    }
}
