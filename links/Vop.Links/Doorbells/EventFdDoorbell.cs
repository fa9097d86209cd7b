using Tmds.Linux;
using Vop.Links.Interop;

namespace Vop.Links.Doorbells;

/// <summary>
/// An eventfd used as a doorbell: the ringer writes a u64 1, the sleeper waits for it to be readable
/// (epoll) and reads the counter to clear it. The same fd serves both ends, as in the ivshmem server.
/// </summary>
public sealed unsafe class EventFdDoorbell : Doorbell, IDisposable
{
    public EventFdDoorbell()
        : this(new SafeFd(Errno.Check(LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK), "eventfd")))
    {
    }

    /// <summary>Wraps an eventfd received from a peer; takes ownership.</summary>
    public EventFdDoorbell(SafeFd fd)
    {
        Handle = fd;
    }

    public SafeFd Handle { get; }

    public int Fd => Handle.Fd;

    /// <summary>Rings: adds 1 to the counter, waking whoever waits on the fd. Never blocks.</summary>
    public override void Ring()
    {
        // The ref count keeps the fd number from being closed and reused under us when another thread
        // disposes a departed peer's doorbell while we ring it.
        bool added = false;
        try
        {
            Handle.DangerousAddRef(ref added);
            ulong one = 1;
            // EAGAIN means the counter is saturated, which already wakes the reader; nothing is lost.
            _ = LibC.write(Handle.Fd, &one, 8);
        }
        catch (ObjectDisposedException)
        {
            // The peer left; ringing it is moot.
        }
        finally
        {
            if (added)
            {
                Handle.DangerousRelease();
            }
        }
    }

    /// <summary>Clears the counter; returns how many rings were pending (0 when none).</summary>
    public ulong Drain()
    {
        ulong value = 0;
        long n = LibC.read(Handle.Fd, &value, 8);
        return n == 8 ? value : 0;
    }

    /// <summary>Blocks up to <paramref name="timeoutMs"/> (-1 forever) for a ring; true when rung.</summary>
    public bool Wait(int timeoutMs)
    {
        var pfd = new pollfd { fd = Handle.Fd, events = LibC.POLLIN };
        int r = LibC.poll(&pfd, 1, timeoutMs);
        return r > 0 && (pfd.revents & LibC.POLLIN) != 0;
    }

    public void Dispose() => Handle.Dispose();
}
