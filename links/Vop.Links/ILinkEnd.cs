using Vop.Links.Doorbells;
using Vop.Links.Windows;

namespace Vop.Links;

/// <summary>
/// One end of a link: the mapped window, doorbells to ring the peer per vector, and the eventfds on which
/// the peer rings us. Vector 0 is the control vector (status and config changes); queues use 1..N-1.
/// </summary>
public interface ILinkEnd : IDisposable
{
    SharedWindow Window { get; }

    int VectorCount { get; }

    /// <summary>Rings the peer on <paramref name="vector"/>; a stable object even while the peer comes and goes.</summary>
    Doorbell PeerDoorbell(int vector);

    /// <summary>The eventfd on which the peer rings us on <paramref name="vector"/>.</summary>
    EventFdDoorbell LocalDoorbell(int vector);

    /// <summary>True while a peer is attached at the transport level (socket connected).</summary>
    bool PeerAttached { get; }
}
