using System.Buffers.Binary;
using Vop.Links.Interop;

namespace Vop.Links.Ivshmem;

/// <summary>
/// The QEMU ivshmem server-to-client protocol (docs/specs/ivshmem-spec.rst, QEMU ≥ 2.5): every message is
/// one little-endian int64, optionally with one fd as SCM_RIGHTS. On connect: version 0, the client's id,
/// -1 with the shm fd, then per existing peer N × (id, eventfd), then N × (own id, eventfd).
/// Afterwards (id, fd) announces a peer's vector and (id) without fd a peer's departure.
/// </summary>
public static class IvshmemProtocol
{
    public const long Version = 0;
    public const long ShmMarker = -1;
    public const int MaxVectors = 64;

    public static void Send(SafeFd socket, long value, int fd = -1)
    {
        Span<byte> buf = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(buf, value);
        ReadOnlySpan<int> fds = fd >= 0 ? [fd] : [];
        UnixSocket.Send(socket, buf, fds);
    }

    /// <summary>Reads one message; false on EOF. Extra fds on one message (protocol violation) are closed.</summary>
    public static bool Receive(SafeFd socket, out long value, out SafeFd? fd)
    {
        Span<byte> buf = stackalloc byte[8];
        var fds = new List<SafeFd>(1);
        value = 0;
        fd = null;
        if (!UnixSocket.Receive(socket, buf, fds))
        {
            return false;
        }

        value = BinaryPrimitives.ReadInt64LittleEndian(buf);
        for (int i = 0; i < fds.Count; i++)
        {
            if (i == 0)
            {
                fd = fds[0];
            }
            else
            {
                fds[i].Dispose();
            }
        }

        return true;
    }
}
