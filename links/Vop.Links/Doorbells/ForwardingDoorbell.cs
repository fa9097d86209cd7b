namespace Vop.Links.Doorbells;

/// <summary>
/// A stable doorbell object for queues to hold while the peer behind it comes and goes: rings whatever
/// target the link last set, or nothing while no peer is there.
/// </summary>
public sealed class ForwardingDoorbell : Doorbell
{
    private volatile Doorbell? _target;

    public Doorbell? Target
    {
        get => _target;
        set => _target = value;
    }

    public override void Ring() => _target?.Ring();
}
