using Tmds.Linux;
using Vop.Links.Interop;
using Vop.Links.Stats;
using Vop.Netstack.Tap;

namespace Vop.Netstack.Device;

/// <summary>One TAP read straight into posted receive buffers, as both receive paths do it.</summary>
internal static unsafe class TapReceive
{
    /// <summary>
    /// The frame's length; 0 when the TAP has nothing (EAGAIN); -1 when the kernel dropped a frame that did
    /// not fit the buffers (EFAULT-like errors), counted as an oversize drop.
    /// </summary>
    public static nint Frame(TapDevice tap, iovec* iov, int count, QueueStats stats)
    {
        nint n = tap.Read(iov, count);
        if (n == -Errno.EAGAIN || n == 0)
        {
            return 0;
        }

        if (n < 0)
        {
            stats.Drops[(int)NetDropReason.Oversize]++;
            return -1;
        }

        return n;
    }
}
