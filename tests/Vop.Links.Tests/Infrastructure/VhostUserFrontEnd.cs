using System.Buffers.Binary;
using Vop.Links.Interop;
using Vop.Links.VhostUser;

namespace Vop.Links.Tests.Infrastructure;

/// <summary>A scriptable vhost-user front-end (what QEMU does), byte for byte, for protocol and hostile-input tests.</summary>
public sealed class VhostUserFrontEnd : IDisposable
{
    private readonly SafeFd _socket;

    public VhostUserFrontEnd(string path)
        : this(UnixSocket.TryConnect(path) ?? throw new IOException($"nobody listens on {path}"))
    {
    }

    /// <summary>A front-end on a connection it accepted (QEMU's chardev with server=on; vop connects).</summary>
    public VhostUserFrontEnd(SafeFd connected)
    {
        _socket = connected;
    }

    /// <summary>Sends a message; with <paramref name="needReply"/> returns the REPLY_ACK status (0 = success).</summary>
    public ulong Send(VhostUserRequest request, ReadOnlySpan<byte> payload, ReadOnlySpan<int> fds = default, bool needReply = true)
    {
        byte[] m = new byte[12 + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(m, (uint)request);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(4), 1u | (needReply ? VhostUserProtocol.FlagNeedReply : 0));
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(8), (uint)payload.Length);
        payload.CopyTo(m.AsSpan(12));
        UnixSocket.Send(_socket, m, fds);
        return needReply ? ReadReply(request) : 0;
    }

    public ulong SendU64(VhostUserRequest request, ulong value, ReadOnlySpan<int> fds = default, bool needReply = true)
    {
        Span<byte> p = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(p, value);
        return Send(request, p, fds, needReply);
    }

    public ulong SendState(VhostUserRequest request, uint index, uint num, bool needReply = true)
    {
        Span<byte> p = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(p, index);
        BinaryPrimitives.WriteUInt32LittleEndian(p[4..], num);
        return Send(request, p, default, needReply);
    }

    /// <summary>A request whose reply is its own (GET_*): returns the reply's first u64.</summary>
    public ulong Get(VhostUserRequest request, ReadOnlySpan<byte> payload = default)
    {
        Send(request, payload, default, needReply: false);
        return ReadReply(request);
    }

    public ulong SetVringAddr(uint index, ulong desc, ulong used, ulong avail)
    {
        byte[] p = new byte[40];
        BinaryPrimitives.WriteUInt32LittleEndian(p, index);
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(8), desc);
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(16), used);
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(24), avail);
        return Send(VhostUserRequest.SetVringAddr, p);
    }

    public ulong SetMemTable(IReadOnlyList<GuestMemoryRegion> regions, int fd)
    {
        byte[] p = new byte[8 + (32 * regions.Count)];
        BinaryPrimitives.WriteUInt32LittleEndian(p, (uint)regions.Count);
        for (int i = 0; i < regions.Count; i++)
        {
            Span<byte> r = p.AsSpan(8 + (32 * i));
            BinaryPrimitives.WriteUInt64LittleEndian(r, regions[i].GuestPhysical);
            BinaryPrimitives.WriteUInt64LittleEndian(r[8..], regions[i].Size);
            BinaryPrimitives.WriteUInt64LittleEndian(r[16..], regions[i].UserAddress);
            BinaryPrimitives.WriteUInt64LittleEndian(r[24..], regions[i].MmapOffset);
        }

        int[] fds = [.. Enumerable.Repeat(fd, regions.Count)];
        return Send(VhostUserRequest.SetMemTable, p, fds);
    }

    /// <summary>Raw bytes, for malformed headers.</summary>
    public void SendRaw(ReadOnlySpan<byte> bytes) => UnixSocket.Send(_socket, bytes, []);

    /// <summary>True when the back-end closed the connection within the timeout.</summary>
    public bool WaitClosed(int timeoutMs)
    {
        if (!UnixSocket.WaitReadable(_socket, timeoutMs))
        {
            return false;
        }

        Span<byte> b = stackalloc byte[1];
        return !UnixSocket.Receive(_socket, b, []);
    }

    private ulong ReadReply(VhostUserRequest request)
    {
        Span<byte> h = stackalloc byte[12];
        if (!UnixSocket.WaitReadable(_socket, 5000) || !UnixSocket.Receive(_socket, h, []))
        {
            throw new IOException($"no reply to {request}");
        }

        Assert.Equal((uint)request, BinaryPrimitives.ReadUInt32LittleEndian(h));
        Assert.Equal(0x5u, BinaryPrimitives.ReadUInt32LittleEndian(h[4..]));
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(h[8..]);
        byte[] p = new byte[size];
        if (size > 0)
        {
            UnixSocket.Receive(_socket, p, []);
        }

        return size >= 8 ? BinaryPrimitives.ReadUInt64LittleEndian(p) : 0;
    }

    public void Dispose() => _socket.Dispose();
}
