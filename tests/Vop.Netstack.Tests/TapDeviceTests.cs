using Tmds.Linux;
using Vop.Links.Interop;
using Vop.Netstack.Tap;
using Vop.Netstack.Tests.Infrastructure;

namespace Vop.Netstack.Tests;

/// <summary><see cref="TapDevice.FromFd"/>: a frame socket behaves as a TAP does toward the pumps, and is not mistaken for one.</summary>
public sealed unsafe class TapDeviceTests
{
    [Fact]
    public void FromFdRefusesASocketWithoutFrameBoundaries()
    {
        int* sv = stackalloc int[2];
        Errno.Check(LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, sv), "socketpair");
        using var other = new SafeFd(sv[1]);
        var fd = new SafeFd(sv[0]);
        ArgumentException e = Assert.Throws<ArgumentException>(() => TapDevice.FromFd(fd, "stream0"));
        Assert.Contains("frame boundaries", e.Message, StringComparison.Ordinal);
        fd.Dispose();
    }

    [Fact]
    public void FromFdDeviceRefusesTapOnlyCalls()
    {
        using var pipe = new FramePipe("pipe0");
        Assert.False(pipe.Tap.IsTap);
        Assert.Throws<InvalidOperationException>(() => pipe.Tap.SetCarrier(true));
        Assert.Throws<InvalidOperationException>(() => pipe.Tap.SetOffloads(1));
        Assert.Throws<InvalidOperationException>(() => pipe.Tap.SetMtu(1500));
        Assert.Throws<InvalidOperationException>(() => pipe.Tap.SetMac(DevicePumpRig.Mac));
        Assert.Throws<InvalidOperationException>(() => pipe.Tap.BringUp());
    }

    [Fact]
    public void ReadOfAFrameLargerThanTheBuffersReturnsItsFullLengthAndConsumesIt()
    {
        // What tun_put_user does: copy what fits, return the frame's length, drop the rest.
        using var pipe = new FramePipe("pipe0");
        byte[] big = [.. Enumerable.Range(0, 100).Select(i => (byte)i)];
        byte[] next = [.. Enumerable.Range(0, 30).Select(i => (byte)(200 + i))];
        pipe.Send(big);
        pipe.Send(next);
        byte[] buffer = new byte[64];
        fixed (byte* p = buffer)
        {
            var iov = new iovec { iov_base = p, iov_len = 40 };
            Assert.Equal(100, (long)pipe.Tap.Read(&iov, 1));
            Assert.Equal(big[..40], buffer[..40]);
            Assert.All(buffer[40..], b => Assert.Equal(0, b));

            iov.iov_len = 64;
            Assert.Equal(30, (long)pipe.Tap.Read(&iov, 1));
            Assert.Equal(next, buffer[..30]);
            Assert.Equal(-LibC.EAGAIN, (long)pipe.Tap.Read(&iov, 1));
        }
    }

    [Fact]
    public void WriteIsOneFrameGatheredFromItsSegments()
    {
        using var pipe = new FramePipe("pipe0");
        byte[] a = [1, 2, 3];
        byte[] b = [4, 5, 6, 7, 8];
        fixed (byte* pa = a)
        fixed (byte* pb = b)
        {
            iovec* iov = stackalloc iovec[2];
            iov[0] = new iovec { iov_base = pa, iov_len = 3 };
            iov[1] = new iovec { iov_base = pb, iov_len = 5 };
            Assert.Equal(8, (long)pipe.Tap.Write(iov, 2));
            Assert.Equal(3, (long)pipe.Tap.Write(iov, 1));
        }

        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8], pipe.Receive());
        Assert.Equal([1, 2, 3], pipe.Receive());
    }
}
