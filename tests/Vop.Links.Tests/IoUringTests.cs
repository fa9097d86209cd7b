using Tmds.Linux;
using Vop.Links.Interop;

namespace Vop.Links.Tests;

/// <summary>The io_uring wrapper the TAP write batch uses: many writev/readv per enter, in queue order, with per-operation results.</summary>
public sealed unsafe class IoUringTests
{
    [Fact]
    public void BatchedWritesArriveInOrderAndReadsSeeThemWithPerOperationResults()
    {
        int* fds = stackalloc int[2];
        Assert.Equal(0, LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET | LibC.SOCK_NONBLOCK, 0, fds));
        using var a = new SafeFd(fds[0]);
        using var b = new SafeFd(fds[1]);
        using var ring = new IoUring(64);
        Assert.Equal(64, ring.Capacity);

        byte[] data = new byte[64 * 100];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (byte)(i / 100);
        }

        fixed (byte* p = data)
        {
            iovec* iov = stackalloc iovec[64];
            for (int round = 0; round < 3; round++)
            {
                for (int i = 0; i < 64; i++)
                {
                    iov[i] = new iovec { iov_base = p + (i * 100), iov_len = (size_t)(10 + i) };
                    Assert.True(ring.QueueWritev(a.Fd, &iov[i], 1));
                }

                Assert.False(ring.QueueWritev(a.Fd, iov, 1)); // full
                Assert.Equal(64, ring.SubmitAndWait());
                for (int i = 0; i < 64; i++)
                {
                    Assert.Equal(10 + i, ring.Result(i));
                }

                // Read them back through the ring: 64 reads, each one message, in order; one more finds none.
                byte[] back = new byte[64 * 128];
                fixed (byte* q = back)
                {
                    for (int i = 0; i < 64; i++)
                    {
                        iov[i] = new iovec { iov_base = q + (i * 128), iov_len = 128 };
                        ring.QueueReadv(b.Fd, &iov[i], 1);
                    }

                    Assert.Equal(64, ring.SubmitAndWait());
                    for (int i = 0; i < 64; i++)
                    {
                        Assert.Equal(10 + i, ring.Result(i));
                        Assert.Equal((byte)i, back[i * 128]);
                        Assert.Equal((byte)i, back[(i * 128) + 9 + i]);
                    }

                    ring.QueueReadv(b.Fd, iov, 1);
                    Assert.Equal(1, ring.SubmitAndWait());
                    Assert.Equal(-LibC.EAGAIN, ring.Result(0)); // a non-blocking fd answers at once
                }
            }
        }

        // A closed peer: the write fails with its own errno and the ring stays usable.
        b.Dispose();
        fixed (byte* p = data)
        {
            var one = new iovec { iov_base = p, iov_len = 10 };
            ring.QueueWritev(a.Fd, &one, 1);
            Assert.Equal(1, ring.SubmitAndWait());
            Assert.True(ring.Result(0) < 0);
        }
    }
}
