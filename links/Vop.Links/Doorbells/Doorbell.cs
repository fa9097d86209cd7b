namespace Vop.Links.Doorbells;

/// <summary>Something that wakes the peer for one queue or vector: an eventfd, a BAR register, nothing (polling).</summary>
public abstract class Doorbell
{
    /// <summary>Wakes the peer. Must not block and must not allocate: it runs on the hot path.</summary>
    public abstract void Ring();
}
