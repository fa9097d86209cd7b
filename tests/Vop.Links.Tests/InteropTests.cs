using Tmds.Linux;
using Vop.Links.Interop;

namespace Vop.Links.Tests;

/// <summary>The interop surface: one errno reader, SafeFd's invalid value, the PTY opener's clean-up.</summary>
public sealed unsafe class InteropTests
{
    /// <summary>A pipe as two owned fds; a write to <c>Write</c> fails with EPIPE once <c>Read</c> is really closed.</summary>
    private static (SafeFd Read, SafeFd Write) Pipe()
    {
        int* fds = stackalloc int[2];
        Errno.Check(LibC.pipe2(fds, LibC.O_CLOEXEC), "pipe2");
        return (new SafeFd(fds[0]), new SafeFd(fds[1]));
    }

    private static int WriteByte(SafeFd fd)
    {
        byte b = 1;
        return (int)LibC.write(fd.Fd, &b, 1);
    }

    [Fact]
    public void ErrnoLastReadsTheErrorOfTmdsAndOfOurOwnImports()
    {
        Assert.Equal(-1, LibC.close(-1));
        Assert.Equal(LibC.EBADF, Errno.Last);
        Assert.Equal(LibC.errno, Errno.Last);

        var iov = new iovec { iov_base = null, iov_len = 0 };
        Assert.Equal(-1, LibCExtra.readv(-1, &iov, 1));
        Assert.Equal(LibC.EBADF, Errno.Last);

        _ = LibC.close(-1);
        IOException e = Assert.Throws<IOException>(() => Errno.Check(-1, "close(-1)"));
        Assert.Equal(LibC.EBADF, e.HResult);
        Assert.StartsWith("close(-1): ", e.Message, StringComparison.Ordinal);
        Assert.Contains($"(errno {LibC.EBADF})", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SafeFdTreatsMinusOneAsInvalidAndZeroAsAnFd()
    {
        using var unset = new SafeFd();
        Assert.True(unset.IsInvalid);
        Assert.Equal(-1, unset.Fd);

        using var failed = new SafeFd(-1);
        Assert.True(failed.IsInvalid);

        // fd 0 (stdin) is a descriptor like any other; not owned, so disposing leaves it open.
        using var zero = new SafeFd(0, ownsHandle: false);
        Assert.False(zero.IsInvalid);
    }

    [Fact]
    public void SafeFdClosesItsFdOnDispose()
    {
        (SafeFd read, SafeFd write) = Pipe();
        using (write)
        {
            Assert.Equal(1, WriteByte(write));
            read.Dispose();
            Assert.True(read.IsClosed);
            Assert.Equal(-1, WriteByte(write));
            Assert.Equal(LibC.EPIPE, Errno.Last);
        }
    }

    [Fact]
    public void PtyOpenerClosesTheMasterWhenGrantptFails()
    {
        // A pipe is no pseudo-terminal master: grantpt refuses it, and the opener must close what it was given.
        (SafeFd read, SafeFd write) = Pipe();
        using (write)
        {
            IOException e = Assert.Throws<IOException>(() => Pty.Unlock(read, out _));
            Assert.StartsWith("cannot allocate a pseudo-terminal: grantpt: ", e.Message, StringComparison.Ordinal);
            Assert.True(read.IsClosed);
            Assert.Equal(-1, WriteByte(write));
            Assert.Equal(LibC.EPIPE, Errno.Last);
        }
    }

    [Fact]
    public void PtyOpenerReturnsAMasterAndItsSlave()
    {
        using SafeFd master = Pty.OpenMaster(out string slave);
        Assert.False(master.IsInvalid);
        Assert.StartsWith("/dev/pts/", slave, StringComparison.Ordinal);
        Assert.True(File.Exists(slave));
    }
}
