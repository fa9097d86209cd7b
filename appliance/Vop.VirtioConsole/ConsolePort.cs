namespace Vop.VirtioConsole;

/// <summary>One port's protocol state in a session.</summary>
internal sealed class ConsolePort
{
    public ConsolePort(int id)
    {
        Id = id;
    }

    public int Id { get; }

    public string? Name { get; set; }

    public PortEndpoint? Endpoint { get; set; }

    public bool Added { get; set; }

    public bool Ready { get; set; }

    public bool IsConsole { get; set; }

    /// <summary>The peer's PORT_OPEN state.</summary>
    public bool PeerOpen { get; set; }

    /// <summary>The peer closed the port; applied once the bytes it sent before the close are delivered.</summary>
    public bool ClosePending { get; set; }

    /// <summary>The PORT_OPEN state we last told the peer (null: not yet).</summary>
    public bool? SentOpen { get; set; }

    public (ushort Cols, ushort Rows) SentSize { get; set; }

    /// <summary>The endpoint's refusals already told to the peer (as PORT_OPEN 1, 0).</summary>
    public int SentRefusals { get; set; }
}
