using System.Runtime.InteropServices;
using Tmds.Linux;

namespace Vop.Links.Interop;

/// <summary>
/// The libc calls Tmds.LibC 0.5.0 does not bind, in one place. Everything else (constants, structs, calls)
/// comes from <see cref="LibC"/>. Source-generated imports (AOT-friendly) with SetLastError, so errno is
/// read the same way as after a Tmds.LibC call: <see cref="Errno.Last"/>.
/// </summary>
public static unsafe partial class LibCExtra
{
    /// <summary>readv(2): scatter read; -1 with errno on failure.</summary>
    public static nint readv(int fd, iovec* iov, int iovcnt) => Readv(fd, iov, iovcnt);

    /// <summary>writev(2): gather write; -1 with errno on failure.</summary>
    public static nint writev(int fd, iovec* iov, int iovcnt) => Writev(fd, iov, iovcnt);

    /// <summary>posix_openpt(3): a new pseudo-terminal master; -1 with errno on failure.</summary>
    public static int posix_openpt(int flags) => PosixOpenpt(flags);

    /// <summary>grantpt(3); 0 or -1 with errno.</summary>
    public static int grantpt(int fd) => Grantpt(fd);

    /// <summary>unlockpt(3); 0 or -1 with errno.</summary>
    public static int unlockpt(int fd) => Unlockpt(fd);

    /// <summary>ptsname_r(3): the slave's path into <paramref name="buf"/>; 0 or an error number (also in errno).</summary>
    public static int ptsname_r(int fd, byte* buf, nuint buflen) => PtsnameR(fd, buf, buflen);

    /// <summary>sched_setaffinity(2): pid 0 is the calling thread; 0 or -1 with errno.</summary>
    public static int sched_setaffinity(int pid, nuint cpusetsize, byte* mask) => SchedSetaffinity(pid, cpusetsize, mask);

    /// <summary>syscall(2) for calls libc has no wrapper for (io_uring_setup, io_uring_enter); -1 with errno.</summary>
    public static long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6) => Syscall(number, a1, a2, a3, a4, a5, a6);

    [LibraryImport("libc", EntryPoint = "readv", SetLastError = true)]
    private static partial nint Readv(int fd, iovec* iov, int iovcnt);

    [LibraryImport("libc", EntryPoint = "writev", SetLastError = true)]
    private static partial nint Writev(int fd, iovec* iov, int iovcnt);

    [LibraryImport("libc", EntryPoint = "posix_openpt", SetLastError = true)]
    private static partial int PosixOpenpt(int flags);

    [LibraryImport("libc", EntryPoint = "grantpt", SetLastError = true)]
    private static partial int Grantpt(int fd);

    [LibraryImport("libc", EntryPoint = "unlockpt", SetLastError = true)]
    private static partial int Unlockpt(int fd);

    [LibraryImport("libc", EntryPoint = "ptsname_r", SetLastError = true)]
    private static partial int PtsnameR(int fd, byte* buf, nuint buflen);

    [LibraryImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static partial int SchedSetaffinity(int pid, nuint cpusetsize, byte* mask);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);
}
