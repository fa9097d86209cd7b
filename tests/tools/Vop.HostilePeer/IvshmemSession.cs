using Vop.Links.Doorbells;
using Vop.Links.Interop;
using Vop.Links.Ivshmem;

namespace Vop.HostilePeer;

/// <summary>
/// A raw ivshmem-protocol client that takes whatever the server sends, in whatever order, without the
/// checks IvshmemClient makes: the attacker wants to see what a server hands to an uninvited client.
/// </summary>
internal sealed class IvshmemSession : IDisposable
{
    private int _messages;

    private IvshmemSession(SafeFd socket)
    {
        Socket = socket;
    }

    public SafeFd Socket { get; }

    public long? Version { get; private set; }

    public long? Id { get; private set; }

    public SafeFd? Shm { get; private set; }

    /// <summary>Every eventfd received, with the peer id it was announced for.</summary>
    public List<(long Peer, EventFdDoorbell Vector)> EventFds { get; } = [];

    public int FdsReceived { get; private set; }

    /// <summary>Messages without an fd after the greeting: a peer left.</summary>
    public int Departures { get; private set; }

    public bool ClosedByServer { get; private set; }

    public bool Admitted => Id is not null && Shm is not null;

    /// <summary>Connects; null when nobody listens at <paramref name="path"/>.</summary>
    public static IvshmemSession? Connect(string path) => UnixSocket.TryConnect(path) is SafeFd s ? new IvshmemSession(s) : null;

    /// <summary>
    /// Reads until the server is quiet for <paramref name="quietMs"/>, closes the connection, or
    /// <paramref name="capMs"/> passed; with <paramref name="untilShm"/> stops as soon as the shm fd is here.
    /// </summary>
    public void ReadGreeting(int quietMs, int capMs, bool untilShm = false)
    {
        long deadline = Environment.TickCount64 + capMs;
        while (!ClosedByServer && Environment.TickCount64 < deadline && !(untilShm && Shm is not null))
        {
            if (!UnixSocket.WaitReadable(Socket, quietMs))
            {
                return;
            }

            ReadOne();
        }
    }

    /// <summary>Reads and classifies one message; false once the server closed the connection.</summary>
    public bool ReadOne()
    {
        long value;
        SafeFd? fd;
        try
        {
            if (!IvshmemProtocol.Receive(Socket, out value, out fd))
            {
                ClosedByServer = true;
                return false;
            }
        }
        catch (IOException)
        {
            // ECONNRESET or a half message: the server dropped us.
            ClosedByServer = true;
            return false;
        }

        FdsReceived += fd is null ? 0 : 1;
        switch (_messages++)
        {
            case 0:
                Version = value;
                fd?.Dispose();
                return true;
            case 1:
                Id = value;
                fd?.Dispose();
                return true;
        }

        if (fd is null)
        {
            Departures++;
        }
        else if (value == IvshmemProtocol.ShmMarker && Shm is null)
        {
            Shm = fd;
        }
        else
        {
            EventFds.Add((value, new EventFdDoorbell(fd)));
        }

        return true;
    }

    public void Dispose()
    {
        Socket.Dispose();
        Shm?.Dispose();
        foreach ((long _, EventFdDoorbell v) in EventFds)
        {
            v.Dispose();
        }
    }
}
