using System.Text;
using Tmds.Linux;

namespace Vop.Links.Interop;

/// <summary>
/// UNIX stream sockets with SCM_RIGHTS fd passing, as the ivshmem and vhost-user protocols need
/// (System.Net.Sockets cannot carry fds).
/// </summary>
public static unsafe class UnixSocket
{
    private const int MaxPath = 107;

    /// <summary>Binds and listens on <paramref name="path"/>, replacing a stale socket file.</summary>
    public static SafeFd Listen(string path, int backlog = 10)
    {
        var fd = new SafeFd(Errno.Check(LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0), "socket(AF_UNIX)"));
        try
        {
            // File.Exists is true for a socket file too: remove a stale one left by a crash.
            if (File.Exists(path))
            {
                File.Delete(path);
            }

            sockaddr_un addr = MakeAddress(path);
            Errno.Check(LibC.bind(fd.Fd, (sockaddr*)&addr, (socklen_t)sizeof(sockaddr_un)), $"bind({path})");
            Errno.Check(LibC.listen(fd.Fd, backlog), $"listen({path})");
            return fd;
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>Connects to <paramref name="path"/>; null when nobody listens there yet (ENOENT, ECONNREFUSED).</summary>
    public static SafeFd? TryConnect(string path)
    {
        var fd = new SafeFd(Errno.Check(LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0), "socket(AF_UNIX)"));
        sockaddr_un addr = MakeAddress(path);
        if (LibC.connect(fd.Fd, (sockaddr*)&addr, (socklen_t)sizeof(sockaddr_un)) == 0)
        {
            return fd;
        }

        int errno = Errno.Last;
        fd.Dispose();
        if (errno == LibC.ENOENT || errno == LibC.ECONNREFUSED)
        {
            return null;
        }

        Errno.Throw($"connect({path})", errno);
        return null;
    }

    /// <summary>The pid of the process at the other end of a connected socket (SO_PEERCRED), or -1; for log lines.</summary>
    public static int PeerPid(SafeFd socket)
    {
        ucred cred;
        var length = (socklen_t)sizeof(ucred);
        return LibC.getsockopt(socket.Fd, LibC.SOL_SOCKET, LibC.SO_PEERCRED, &cred, &length) == 0 ? cred.pid : -1;
    }

    /// <summary>Accepts one connection; null on EAGAIN/EINTR.</summary>
    public static SafeFd? Accept(SafeFd listener)
    {
        int fd = LibC.accept4(listener.Fd, null, null, LibC.SOCK_CLOEXEC);
        if (fd < 0)
        {
            int errno = Errno.Last;
            if (errno == LibC.EAGAIN || errno == LibC.EINTR)
            {
                return null;
            }

            Errno.Throw("accept", errno);
        }

        return new SafeFd(fd);
    }

    /// <summary>Sends <paramref name="payload"/> in one sendmsg with <paramref name="fds"/> as SCM_RIGHTS (may be empty).</summary>
    public static void Send(SafeFd socket, ReadOnlySpan<byte> payload, ReadOnlySpan<int> fds)
    {
        if (fds.Length > 8)
        {
            throw new ArgumentException("at most 8 fds per message", nameof(fds));
        }

        byte* control = stackalloc byte[CmsgSpace(sizeof(int) * 8)];
        fixed (byte* data = payload)
        {
            var iov = new iovec { iov_base = data, iov_len = (size_t)payload.Length };
            var msg = new msghdr { msg_iov = &iov, msg_iovlen = 1 };
            if (fds.Length > 0)
            {
                int space = CmsgSpace(sizeof(int) * fds.Length);
                new Span<byte>(control, space).Clear();
                msg.msg_control = control;
                msg.msg_controllen = (socklen_t)space;
                cmsghdr* c = LibC.CMSG_FIRSTHDR(&msg);
                c->cmsg_level = LibC.SOL_SOCKET;
                c->cmsg_type = LibC.SCM_RIGHTS;
                c->cmsg_len = (socklen_t)CmsgLen(sizeof(int) * fds.Length);
                int* dst = (int*)LibC.CMSG_DATA(c);
                for (int i = 0; i < fds.Length; i++)
                {
                    dst[i] = fds[i];
                }
            }

            long sent;
            do
            {
                sent = LibC.sendmsg(socket.Fd, &msg, LibC.MSG_NOSIGNAL);
            }
            while (sent < 0 && Errno.Last == LibC.EINTR);

            Errno.Check(sent, "sendmsg");
            if (sent != payload.Length)
            {
                throw new IOException($"sendmsg sent {sent} of {payload.Length} bytes");
            }
        }
    }

    /// <summary>
    /// Receives exactly <paramref name="payload"/>.Length bytes; fds that arrive with them are appended to
    /// <paramref name="fds"/>. Returns false on orderly EOF before any byte. Fds beyond what the control
    /// buffer holds are closed by the kernel (MSG_CTRUNC).
    /// </summary>
    public static bool Receive(SafeFd socket, Span<byte> payload, List<SafeFd> fds)
    {
        int got = 0;
        byte* control = stackalloc byte[CmsgSpace(sizeof(int) * 8)];
        fixed (byte* data = payload)
        {
            while (got < payload.Length)
            {
                var iov = new iovec { iov_base = data + got, iov_len = (size_t)(payload.Length - got) };
                int space = CmsgSpace(sizeof(int) * 8);
                new Span<byte>(control, space).Clear();
                var msg = new msghdr { msg_iov = &iov, msg_iovlen = 1, msg_control = control, msg_controllen = (socklen_t)space };
                long n = LibC.recvmsg(socket.Fd, &msg, LibC.MSG_CMSG_CLOEXEC);
                if (n < 0)
                {
                    if (Errno.Last == LibC.EINTR)
                    {
                        continue;
                    }

                    Errno.Throw("recvmsg");
                }

                CollectFds(control, (int)(uint)msg.msg_controllen, fds);
                if (n == 0)
                {
                    if (got == 0)
                    {
                        return false;
                    }

                    throw new EndOfStreamException($"peer closed after {got} of {payload.Length} bytes");
                }

                got += (int)n;
            }
        }

        return true;
    }

    // glibc's CMSG_* for x86-64/arm64 (cmsghdr is 16 bytes, alignment 8). Tmds.LibC 0.5.0 returns
    // CMSG_LEN(4) = 24 instead of 20, which makes the kernel read a second (zero, i.e. stdin) fd.
    private static int CmsgAlign(int n) => (n + 7) & ~7;

    private static int CmsgLen(int n) => sizeof(cmsghdr) + n;

    private static int CmsgSpace(int n) => sizeof(cmsghdr) + CmsgAlign(n);

    /// <summary>
    /// Walks the control buffer with explicit bounds (Tmds.LibC's CMSG_NXTHDR does not stop at
    /// msg_controllen and would hand back a stale header, i.e. the same fd twice).
    /// </summary>
    private static void CollectFds(byte* control, int length, List<SafeFd> fds)
    {
        int header = sizeof(cmsghdr);
        int offset = 0;
        while (offset + header <= length)
        {
            var c = (cmsghdr*)(control + offset);
            int len = (int)(uint)c->cmsg_len;
            if (len < header || offset + len > length)
            {
                break;
            }

            if (c->cmsg_level == LibC.SOL_SOCKET && c->cmsg_type == LibC.SCM_RIGHTS)
            {
                int count = (len - CmsgLen(0)) / sizeof(int);
                int* src = (int*)LibC.CMSG_DATA(c);
                for (int i = 0; i < count; i++)
                {
                    fds.Add(new SafeFd(src[i]));
                }
            }

            offset += CmsgAlign(len);
        }
    }

    /// <summary>SO_RCVTIMEO: a blocked receive fails with EAGAIN (an <see cref="IOException"/>) after <paramref name="seconds"/>.</summary>
    public static void SetReceiveTimeout(SafeFd socket, int seconds)
    {
        long* timeval = stackalloc long[2] { seconds, 0 }; // struct timeval (Tmds.LibC has none): tv_sec, tv_usec
        Errno.Check(LibC.setsockopt(socket.Fd, LibC.SOL_SOCKET, LibC.SO_RCVTIMEO, timeval, (socklen_t)16), "setsockopt(SO_RCVTIMEO)");
    }

    /// <summary>SO_SNDTIMEO: a send blocked on a full socket buffer fails with EAGAIN (an <see cref="IOException"/>) after <paramref name="seconds"/>.</summary>
    public static void SetSendTimeout(SafeFd socket, int seconds)
    {
        long* timeval = stackalloc long[2] { seconds, 0 };
        Errno.Check(LibC.setsockopt(socket.Fd, LibC.SOL_SOCKET, LibC.SO_SNDTIMEO, timeval, (socklen_t)16), "setsockopt(SO_SNDTIMEO)");
    }

    /// <summary>shutdown(SHUT_RDWR): the peer sees EOF and a receive blocked in another thread returns.</summary>
    public static void Shutdown(SafeFd socket) => _ = LibC.shutdown(socket.Fd, LibC.SHUT_RDWR);

    /// <summary>Waits up to <paramref name="timeoutMs"/> for <paramref name="fd"/> to be readable (or hung up).</summary>
    public static bool WaitReadable(SafeFd fd, int timeoutMs)
    {
        var pfd = new pollfd { fd = fd.Fd, events = LibC.POLLIN };
        int r;
        do
        {
            r = LibC.poll(&pfd, 1, timeoutMs);
        }
        while (r < 0 && Errno.Last == LibC.EINTR);

        return r > 0;
    }

    private static sockaddr_un MakeAddress(string path)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(path);
        if (bytes.Length > MaxPath)
        {
            throw new ArgumentException($"socket path '{path}' is longer than {MaxPath} bytes");
        }

        var addr = new sockaddr_un { sun_family = (sa_family_t)LibC.AF_UNIX };
        byte* p = addr.sun_path;
        for (int i = 0; i < bytes.Length; i++)
        {
            p[i] = bytes[i];
        }

        p[bytes.Length] = 0;
        return addr;
    }
}
