namespace Vop.VirtioConsole;

/// <summary>
/// What a console port is bound to at this end: a login PTY or a TCP connection on the card, a UNIX socket
/// on the host. Bytes from the peer arrive through <see cref="Deliver"/>; bytes for the peer are queued in
/// <see cref="Outbound"/>. <see cref="LocalOpen"/> is this end's PORT_OPEN state.
/// </summary>
public abstract class PortEndpoint : IDisposable
{
    private volatile bool _localOpen;

    protected PortEndpoint(string name)
    {
        Name = name;
        Outbound = new ByteQueue(256 * 1024);
        Outbound.DataAdded = () => Changed?.Invoke();
    }

    public string Name { get; }

    /// <summary>A queue for bytes from the peer whose draining wakes the pump (it holds back while full).</summary>
    protected ByteQueue NewInbound(int capacity) => new(capacity) { SpaceFreed = () => Changed?.Invoke() };

    /// <summary>Bytes from this end toward the peer; the console pump drains it.</summary>
    public ByteQueue Outbound { get; }

    /// <summary>Wakes the console pump: data queued or open state changed.</summary>
    public Action? Changed { get; set; }

    public bool LocalOpen
    {
        get => _localOpen;
        protected set
        {
            if (_localOpen != value)
            {
                _localOpen = value;
                Changed?.Invoke();
            }
        }
    }

    private int _refusals;

    /// <summary>
    /// This end could not serve the session the peer opened (a card port whose TCP connect failed). The
    /// pump tells the peer PORT_OPEN 1 then PORT_OPEN 0, the plain protocol for a session that ends at once
    /// without a byte, so the peer's client sees its stream end instead of waiting for one that never comes.
    /// </summary>
    protected void Refuse()
    {
        Interlocked.Increment(ref _refusals);
        Changed?.Invoke();
    }

    /// <summary>How many sessions this end refused (see <see cref="Refuse"/>); the pump sends each once.</summary>
    public int Refusals => Volatile.Read(ref _refusals);

    /// <summary>How many bytes <see cref="Deliver"/> can take now without blocking or losing any.</summary>
    public abstract int InboundSpace { get; }

    /// <summary>Bytes from the peer. Never blocks: the pump offers no more than <see cref="InboundSpace"/>.</summary>
    public abstract void Deliver(ReadOnlySpan<byte> data);

    /// <summary>The peer's end opened or closed the port (PORT_OPEN from the peer, or the peer went away).</summary>
    public virtual void PeerOpenChanged(bool open)
    {
    }

    /// <summary>A window size for this port (RESIZE toward the end that runs the terminal).</summary>
    public virtual void Resize(ushort cols, ushort rows)
    {
    }

    /// <summary>The last window size a host-end client asked for, to be sent to the card end (0 = none).</summary>
    public (ushort Cols, ushort Rows) RequestedSize { get; protected set; }

    public virtual void Dispose()
    {
        Outbound.Close();
        GC.SuppressFinalize(this);
    }
}
