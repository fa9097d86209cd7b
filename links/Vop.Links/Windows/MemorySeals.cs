using System.Text;
using Tmds.Linux;
using Vop.Links.Interop;

namespace Vop.Links.Windows;

/// <summary>
/// Shared memory that cannot shrink under a mapping. When a peer truncates the file behind our mapping, the
/// next access past the new end raises SIGBUS, which the runtime turns into an AccessViolationException no
/// code can catch: the process dies. So shrinking must be impossible, not handled: memfds vop creates are
/// sealed before anyone sees them, memfds vop receives must carry F_SEAL_SHRINK (or take it from us), and
/// window files must be writable by nobody but their owner.
/// </summary>
public static unsafe class MemorySeals
{
    // <linux/fcntl.h>; Tmds.LibC has the names, kept here as one place for the policy.
    private static int ResizeSeals => LibC.F_SEAL_SHRINK | LibC.F_SEAL_GROW;

    /// <summary>Seals a memfd vop created (with MFD_ALLOW_SEALING) against resizing and any later seal change.</summary>
    public static void SealOwn(SafeFd fd, string what) =>
        Errno.Check(LibC.fcntl(fd.Fd, LibC.F_ADD_SEALS, ResizeSeals | LibC.F_SEAL_SEAL), $"fcntl(F_ADD_SEALS, {what})");

    /// <summary>The seals of <paramref name="fd"/>, or -1 when it cannot carry any (not a memfd/shmem file).</summary>
    public static int Seals(SafeFd fd) => LibC.fcntl(fd.Fd, LibC.F_GET_SEALS, 0);

    /// <summary>
    /// Makes sure memory received from a peer cannot shrink: it already carries F_SEAL_SHRINK, or it still
    /// accepts seals and we add SHRINK and GROW ourselves. Null when safe, else one line saying why not.
    /// </summary>
    public static string? EnsureCannotShrink(SafeFd fd)
    {
        int seals = Seals(fd);
        if (seals < 0)
        {
            return $"the shared memory fd is not a sealable memfd (F_GET_SEALS: {Errno.Describe(Errno.Last)})";
        }

        if ((seals & LibC.F_SEAL_SHRINK) != 0)
        {
            return null;
        }

        if ((seals & LibC.F_SEAL_SEAL) == 0 && LibC.fcntl(fd.Fd, LibC.F_ADD_SEALS, ResizeSeals) == 0)
        {
            return null;
        }

        return $"the shared memory fd carries no F_SEAL_SHRINK (seals 0x{seals:x}) and cannot be sealed, so its owner could truncate it under us";
    }

    /// <summary>True when <paramref name="fd"/> is a memfd (its /proc/self/fd link reads "/memfd:NAME (deleted)").</summary>
    public static bool IsMemfd(SafeFd fd)
    {
        byte[] path = Encoding.ASCII.GetBytes($"/proc/self/fd/{fd.Fd}\0");
        byte* target = stackalloc byte[64];
        long n;
        fixed (byte* p = path)
        {
            n = LibC.readlink(p, target, 64);
        }

        return n >= 7 && new ReadOnlySpan<byte>(target, 7).SequenceEqual("/memfd:"u8);
    }

    /// <summary>
    /// A window file must be ours and writable by nobody else: anyone who can write it can truncate it
    /// (SIGBUS here) or rewrite it while we run. Null when it is, else one line naming the file and why not.
    /// Root can always truncate it; that residual risk is documented.
    /// </summary>
    public static string? CheckWindowFile(SafeFd fd, string path)
    {
        const int AtEmptyPath = 0x1000;
        const uint StatxBasic = 0x7ff;
        statx st;
        byte empty = 0;
        if (LibC.statx(fd.Fd, &empty, AtEmptyPath, StatxBasic, &st) != 0)
        {
            return $"window file {path}: statx: {Errno.Describe(Errno.Last)}";
        }

        uint mode = st.stx_mode;
        uint owner = st.stx_uid;
        uint me = LibC.geteuid();
        if (owner != me && owner != 0)
        {
            return $"window file {path} belongs to uid {owner}, not to this process (uid {me}) or root: its owner could truncate it under us";
        }

        if ((mode & 0x12) != 0) // S_IWGRP | S_IWOTH
        {
            return $"window file {path} has mode {Convert.ToString(mode & 0xfff, 8)}: others can write it (and truncate it under us); chmod go-w it";
        }

        return null;
    }
}
