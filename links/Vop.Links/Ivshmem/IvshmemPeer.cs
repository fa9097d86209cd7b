using Vop.Links.Doorbells;
using Vop.Links.Interop;

namespace Vop.Links.Ivshmem;

/// <summary>One peer of an ivshmem server: its id, its socket (none for the server's local peer) and one eventfd per vector.</summary>
public sealed class IvshmemPeer : IDisposable
{
    public IvshmemPeer(ushort id, SafeFd? socket, EventFdDoorbell[] vectors)
    {
        Id = id;
        Socket = socket;
        Vectors = vectors;
    }

    public ushort Id { get; }

    public SafeFd? Socket { get; }

    /// <summary>Eventfd per vector: write to interrupt this peer, read (by this peer) to receive.</summary>
    public EventFdDoorbell[] Vectors { get; }

    public void Dispose()
    {
        Socket?.Dispose();
        foreach (EventFdDoorbell v in Vectors)
        {
            v.Dispose();
        }
    }
}
