using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Vop.Links.Interop;

/// <summary>
/// The one way to read errno, and libc's -1/errno convention turned into exceptions that name the call.
/// Compare against Tmds.LibC's names (<c>Errno.Last == LibC.EINTR</c>), never against numbers.
/// </summary>
public static class Errno
{
    /// <summary>
    /// errno of the last libc call on this thread. Tmds.LibC's imports and ours (<see cref="LibCExtra"/>) are
    /// all SetLastError, so the runtime saved errno right after the call (nothing the runtime does in between,
    /// such as a GC, can clobber it); Tmds.LibC's own <c>LibC.errno</c> reads the same saved value.
    /// </summary>
    public static int Last => Marshal.GetLastPInvokeError();

    /// <summary>Returns <paramref name="result"/> or throws naming <paramref name="what"/> and errno.</summary>
    public static int Check(int result, string what)
    {
        if (result < 0)
        {
            Throw(what);
        }

        return result;
    }

    public static long Check(long result, string what)
    {
        if (result < 0)
        {
            Throw(what);
        }

        return result;
    }

    [DoesNotReturn]
    public static void Throw(string what) => Throw(what, Last);

    [DoesNotReturn]
    public static void Throw(string what, int errno) =>
        throw new IOException($"{what}: {Describe(errno)}", errno);

    public static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
}
