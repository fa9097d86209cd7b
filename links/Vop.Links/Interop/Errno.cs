using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using Tmds.Linux;

namespace Vop.Links.Interop;

/// <summary>Turns libc's -1/errno convention into typed exceptions that name the call.</summary>
public static class Errno
{
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int ENOENT = 2;
    public const int ECONNREFUSED = 111;

    public static int Last => Marshal.GetLastPInvokeError() is int e && e != 0 ? e : LibC.errno;

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
    public static void Throw(string what) => Throw(what, LibC.errno);

    [DoesNotReturn]
    public static void Throw(string what, int errno) =>
        throw new IOException($"{what}: {Describe(errno)}", errno);

    public static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
}
