using Tmds.Linux;
using Vop.Links.Stats;
using Vop.Netstack.Tap;
using Vop.Netstack.Tests.Infrastructure;

namespace Vop.Netstack.Tests;

/// <summary>
/// The pumps' io_uring TAP writes, over a frame pipe: nothing leaves before the flush, everything leaves in
/// order after it, and a peer that stops reading costs counted drops, never a pump stuck in the kernel.
/// </summary>
public sealed unsafe class TapWriteBatchTests
{
    [Fact]
    public void WritesLeaveAtTheFlushInOrderAndAFullPeerCostsDropsNotAHang()
    {
        using var pipe = new FramePipe("batch0");
        var stats = new QueueStats("tx0", NetDropReasonNames.All);
        using var batch = new TapWriteBatch(pipe.Tap, stats, 64);
        Assert.True(batch.Batched, "io_uring could not be set up on this kernel");

        byte[] data = new byte[200 * 256];
        for (int i = 0; i < 200; i++)
        {
            data.AsSpan(i * 256, 256).Fill((byte)i);
        }

        fixed (byte* p = data)
        {
            // Ten frames, each of two segments: held until the flush.
            iovec* iov = stackalloc iovec[2];
            for (int i = 0; i < 10; i++)
            {
                iov[0] = new iovec { iov_base = p + (i * 256), iov_len = 12 };
                iov[1] = new iovec { iov_base = p + (i * 256) + 12, iov_len = (size_t)(60 + i) };
                batch.Write(iov, 2);
            }

            Assert.Null(pipe.TryReceive(TimeSpan.FromMilliseconds(50)));
            batch.Flush();
            for (int i = 0; i < 10; i++)
            {
                byte[] m = pipe.Receive();
                Assert.Equal(72 + i, m.Length);
                Assert.All(m, b => Assert.Equal((byte)i, b));
            }

            // 200 frames: more than one submission holds (64) and more segments than the pool (256 in all). The
            // pipe holds only a few messages (net.unix.max_dgram_qlen) and nobody reads while we write: the
            // writes beyond it fail at once (RWF_NOWAIT) instead of waiting, and are counted. What arrives is
            // in order.
            for (int i = 0; i < 200; i++)
            {
                iov[0] = new iovec { iov_base = p + (i * 256), iov_len = 100 };
                iov[1] = new iovec { iov_base = p + (i * 256) + 100, iov_len = 100 };
                batch.Write(iov, 2);
            }

            batch.Flush();
            long dropped = stats.Drops[(int)NetDropReason.TapError];
            var arrived = new List<int>();
            while (pipe.TryReceive(TimeSpan.Zero) is byte[] m)
            {
                Assert.Equal(200, m.Length);
                arrived.Add(m[0]);
            }

            Assert.True(arrived.Count >= 10, $"{arrived.Count} frames arrived");
            Assert.Equal(200, arrived.Count + dropped);
            Assert.Equal(arrived.Order(), arrived);
            Assert.Equal(0, arrived[0]);
        }
    }
}
