namespace Vop.VirtioConsole.Endpoints;

/// <summary>A port this end has no backend for: stays closed and discards what arrives.</summary>
public sealed class DiscardPortEndpoint : PortEndpoint
{
    public DiscardPortEndpoint(string name)
        : base(name)
    {
    }

    public override int InboundSpace => int.MaxValue;

    public override void Deliver(ReadOnlySpan<byte> data)
    {
    }
}
