namespace Vop.Links.Transport;

/// <summary>
/// Whether a peer is alive by its state block: state Running and a heartbeat that moved within the timeout
/// (sides beat every 100 ms). Read by one thread.
/// </summary>
public sealed class PeerHeartbeat
{
    public const long TimeoutMs = 3000;

    private ulong _beat;
    private long _seen;

    /// <summary>Takes a fresh snapshot of the peer's block; true while the peer is alive.</summary>
    public bool Alive(SideSnapshot peer, long nowMs)
    {
        if (peer.Heartbeat != _beat)
        {
            _beat = peer.Heartbeat;
            _seen = nowMs;
        }

        return peer.State == SideState.Running && nowMs - _seen < TimeoutMs;
    }
}
