using Tmds.Linux;
using Vop.Links.Stats;
using Vop.Netstack.Tap;

namespace Vop.Netstack.Device;

/// <summary>One TAP read straight into posted receive buffers, as both receive paths do it.</summary>
internal static unsafe class TapReceive
{
    /// <summary>
    /// The frame's length; 0 when the TAP has nothing (EAGAIN); -1, counted as an oversize drop, when the
    /// frame did not fit the <paramref name="capacity"/> bytes of the buffers or the read failed. A TAP
    /// copies what fits of a longer frame, returns its full length and drops the rest (tun_put_user), so
    /// a length above the capacity is a cut-off frame that must not be completed as if whole.
    /// </summary>
    public static nint Frame(TapDevice tap, iovec* iov, int count, ulong capacity, QueueStats stats)
    {
        nint n = tap.Read(iov, count);
        if (n == -LibC.EAGAIN || n == 0 || n == -LibC.EBADFD)
        {
            // EBADFD: a detached multiqueue TAP queue (a pair the peer just stopped using) reads as empty.
            return 0;
        }

        if (n <= Tun.TunFraming.DropBase)
        {
            stats.Drops[(int)Tun.TunFraming.ReasonOf(n)]++; // TUN mode: consumed and dropped for a reason of its own
            return -1;
        }

        if (n < 0 || (ulong)n > capacity)
        {
            stats.Drops[(int)NetDropReason.Oversize]++;
            return -1;
        }

        return n;
    }
}

/// <summary>One TAP write from the window, as both transmit paths do it.</summary>
internal static unsafe class TapSend
{
    /// <summary>Writes the frame; false when refused, which is counted (tap_error, or a TUN end's own reason): the frame is gone.</summary>
    public static bool Frame(TapDevice tap, iovec* iov, int count, QueueStats stats)
    {
        nint n = tap.Write(iov, count);
        if (n < 0)
        {
            stats.Drops[(int)(n <= Tun.TunFraming.DropBase ? Tun.TunFraming.ReasonOf(n) : NetDropReason.TapError)]++;
        }

        return n >= 0;
    }
}
