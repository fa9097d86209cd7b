using Tmds.Linux;
using Vop.Links.Interop;
using Vop.Netstack.Tap;

namespace Vop.Netstack.Tests.Infrastructure;

/// <summary>
/// An AF_UNIX SOCK_SEQPACKET socketpair standing in for a TAP opened with IFF_VNET_HDR: <see cref="Tap"/>
/// is the pump's end (<see cref="TapDevice.FromFd"/>), the other end is the test's "kernel". Each message
/// is one frame, virtio_net_hdr_v1 first, exactly as a TAP reads and writes them.
/// </summary>
internal sealed unsafe class FramePipe : IDisposable
{
    private const int MaxMessage = 256 * 1024;
    private readonly SafeFd _peer;
    private readonly byte[] _buffer = new byte[MaxMessage];

    // tun: play a TUN instead: messages are IP packets after the header, and the pump's end frames them with these addresses.
    public FramePipe(string name, Tun.TunAddresses? tun = null)
    {
        int* sv = stackalloc int[2];
        Errno.Check(LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET | LibC.SOCK_CLOEXEC, 0, sv), "socketpair");
        Tap = TapDevice.FromFd(new SafeFd(sv[0]), name, tun);
        _peer = new SafeFd(sv[1]);
    }

    /// <summary>The pump's end.</summary>
    public TapDevice Tap { get; }

    /// <summary>Writes one frame toward the pump, as the kernel queues one for a TAP reader.</summary>
    public void Send(ReadOnlySpan<byte> message)
    {
        long deadline = Environment.TickCount64 + (long)Wait.Long.TotalMilliseconds;
        fixed (byte* p = message)
        {
            while (true)
            {
                long n = LibC.send(_peer.Fd, p, message.Length, LibC.MSG_DONTWAIT | LibC.MSG_NOSIGNAL);
                if (n == message.Length)
                {
                    return;
                }

                int e = Errno.Last;
                Assert.True(n < 0 && e == LibC.EAGAIN, $"send: {n} of {message.Length} bytes, errno {e}");
                Assert.True(Environment.TickCount64 < deadline, "the pump never drained its end of the pipe");
                Poll(LibC.POLLOUT, 100);
            }
        }
    }

    /// <summary>The next frame the pump wrote; fails the test when none comes before the deadline.</summary>
    public byte[] Receive()
    {
        byte[]? m = TryReceive(Wait.Long);
        Assert.True(m is not null, "no frame came out of the pump");
        return m;
    }

    /// <summary>The next frame the pump wrote, or null when none is queued within <paramref name="timeout"/>.</summary>
    public byte[]? TryReceive(TimeSpan timeout)
    {
        if (!Poll(LibC.POLLIN, (int)timeout.TotalMilliseconds))
        {
            return null;
        }

        fixed (byte* p = _buffer)
        {
            long n = LibC.recv(_peer.Fd, p, _buffer.Length, LibC.MSG_DONTWAIT);
            Assert.True(n >= 0, $"recv: errno {Errno.Last}");
            return _buffer.AsSpan(0, (int)n).ToArray();
        }
    }

    /// <summary>Reads everything already queued toward the test (frames the pump wrote and nobody took yet).</summary>
    public int Discard()
    {
        int count = 0;
        while (TryReceive(TimeSpan.Zero) is not null)
        {
            count++;
        }

        return count;
    }

    private bool Poll(short events, int timeoutMs)
    {
        var pfd = new pollfd { fd = _peer.Fd, events = events };
        return LibC.poll(&pfd, 1, timeoutMs) > 0 && (pfd.revents & events) != 0;
    }

    public void Dispose()
    {
        Tap.Dispose();
        _peer.Dispose();
    }
}
