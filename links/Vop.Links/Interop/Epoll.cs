using Tmds.Linux;

namespace Vop.Links.Interop;

/// <summary>An epoll instance for a pump thread: level-triggered, the fd itself is the event's data.</summary>
public sealed unsafe class Epoll : IDisposable
{
    private readonly SafeFd _fd;
    private readonly epoll_event[] _events;

    public Epoll(int capacity = 16)
    {
        _fd = new SafeFd(Errno.Check(LibC.epoll_create1(LibC.EPOLL_CLOEXEC), "epoll_create1"));
        _events = new epoll_event[capacity];
    }

    public void Add(int fd, bool readable = true) => Control(LibC.EPOLL_CTL_ADD, fd, readable);

    /// <summary>Turns read interest on or off without removing the fd (e.g. a TAP while no buffers are posted).</summary>
    public void SetReadable(int fd, bool readable) => Control(LibC.EPOLL_CTL_MOD, fd, readable);

    public void Remove(int fd)
    {
        epoll_event ev = default;
        _ = LibC.epoll_ctl(_fd.Fd, LibC.EPOLL_CTL_DEL, fd, &ev);
    }

    private void Control(int op, int fd, bool readable)
    {
        var ev = new epoll_event { events = readable ? LibC.EPOLLIN : 0 };
        ev.data.fd = fd;
        Errno.Check(LibC.epoll_ctl(_fd.Fd, op, fd, &ev), "epoll_ctl");
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/>; returns the number of ready fds, readable via <see cref="ReadyFd"/>.</summary>
    public int Wait(int timeoutMs)
    {
        fixed (epoll_event* p = _events)
        {
            int n = LibC.epoll_wait(_fd.Fd, p, _events.Length, timeoutMs);
            return n < 0 ? 0 : n; // EINTR: report nothing ready
        }
    }

    public int ReadyFd(int index) => _events[index].data.fd;

    public void Dispose() => _fd.Dispose();
}
