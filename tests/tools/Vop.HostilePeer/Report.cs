using System.Globalization;
using System.Runtime.InteropServices;
using Tmds.Linux;
using Vop.Links.Interop;

namespace Vop.HostilePeer;

/// <summary>
/// Output conventions of the tool: one key=value line per observed fact on stdout; a verb that could not
/// even try its attack writes one line to stderr and exits non-zero.
/// </summary>
internal static class Report
{
    /// <summary>The attack could not be attempted (nothing listens, file missing, bad argument).</summary>
    public const int CouldNotTry = 1;

    /// <summary>The victim turned us away before the attack could be attempted (e.g. no shm fd for a second client).</summary>
    public const int TurnedAway = 3;

    public static void Line(string key, object value) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{key}={value}"));

    public static int Fail(string verb, string message, int code = CouldNotTry)
    {
        Console.Error.WriteLine($"vop-hostile {verb}: {message}");
        return code;
    }

    public static string Hex(ulong value) => string.Create(CultureInfo.InvariantCulture, $"0x{value:x}");

    /// <summary>"ok" or "refused errno=NAME" for a syscall result.</summary>
    public static string Outcome(int result, int errno) => result == 0 ? "ok" : $"refused errno={ErrnoName(errno)}";

    /// <summary>The symbolic name of the errno values an attack can plausibly meet.</summary>
    public static string ErrnoName(int errno)
    {
        int i = Array.FindIndex(s_errnoNames, n => n.Value == errno);
        return i >= 0 ? s_errnoNames[i].Name : string.Create(CultureInfo.InvariantCulture, $"E{errno}");
    }

    private static readonly (int Value, string Name)[] s_errnoNames =
    [
        (LibC.EPERM, "EPERM"),
        (LibC.ENOENT, "ENOENT"),
        (LibC.EINTR, "EINTR"),
        (LibC.EIO, "EIO"),
        (LibC.EBADF, "EBADF"),
        (LibC.EAGAIN, "EAGAIN"),
        (LibC.ENOMEM, "ENOMEM"),
        (LibC.EACCES, "EACCES"),
        (LibC.EFAULT, "EFAULT"),
        (LibC.EBUSY, "EBUSY"),
        (LibC.EISDIR, "EISDIR"),
        (LibC.EINVAL, "EINVAL"),
        (LibC.ETXTBSY, "ETXTBSY"),
        (LibC.EFBIG, "EFBIG"),
        (LibC.ENOSPC, "ENOSPC"),
        (LibC.EROFS, "EROFS"),
        (LibC.EOPNOTSUPP, "EOPNOTSUPP"),
        (LibC.ECONNRESET, "ECONNRESET"),
        (LibC.ECONNREFUSED, "ECONNREFUSED"),
    ];

    /// <summary>fcntl(F_GET_SEALS) as hex: 0x1 for a memfd made without MFD_ALLOW_SEALING, 0x7 for SEAL|SHRINK|GROW.</summary>
    public static string Seals(int fd)
    {
        int seals = LibC.fcntl(fd, LibC.F_GET_SEALS);
        return seals >= 0 ? Hex((uint)seals) : $"unknown errno={ErrnoName(Errno.Last)}";
    }

    /// <summary>Cancels <paramref name="cancel"/> on SIGTERM, SIGINT or after <paramref name="durationMs"/> (when ≥ 0).</summary>
    public static IDisposable StopOnSignals(CancellationTokenSource cancel, int durationMs)
    {
        if (durationMs >= 0)
        {
            cancel.CancelAfter(durationMs);
        }

        return new Registrations(
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => Stop(c, cancel)),
            PosixSignalRegistration.Create(PosixSignal.SIGINT, c => Stop(c, cancel)));

        static void Stop(PosixSignalContext c, CancellationTokenSource cancel)
        {
            // Stop in order (summary printed, socket removed) instead of dying mid-layout.
            c.Cancel = true;
            cancel.Cancel();
        }
    }

    /// <summary>Size of the file behind <paramref name="fd"/> (lseek to the end), or -1 with errno set.</summary>
    public static long FdSize(int fd) => LibC.lseek(fd, 0, LibC.SEEK_END);

    /// <summary>Bytes with an optional K/M/G suffix (binary units) or a 0x prefix: "64M", "4096", "0x1000".</summary>
    public static ulong ParseSize(string text)
    {
        string t = text.Trim();
        ulong unit = 1;
        if (t.Length > 0 && char.ToUpperInvariant(t[^1]) is 'K' or 'M' or 'G')
        {
            unit = char.ToUpperInvariant(t[^1]) switch { 'K' => 1UL << 10, 'M' => 1UL << 20, _ => 1UL << 30 };
            t = t[..^1];
        }

        return checked(ParseNumber(t) * unit);
    }

    /// <summary>A decimal or 0x-prefixed hexadecimal number.</summary>
    public static ulong ParseNumber(string text)
    {
        string t = text.Trim();
        bool ok = t.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(t.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong v)
            : ulong.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out v);
        return ok ? v : throw new FormatException($"'{text}' is not a number");
    }

    private sealed class Registrations(params PosixSignalRegistration[] all) : IDisposable
    {
        public void Dispose()
        {
            foreach (PosixSignalRegistration r in all)
            {
                r.Dispose();
            }
        }
    }
}
