using System.Text;
using Tmds.Linux;

namespace Vop.Links.Interop;

/// <summary>Pseudo-terminal masters: posix_openpt(3), grantpt, unlockpt, ptsname_r.</summary>
public static unsafe class Pty
{
    private const int NameCapacity = 128;

    /// <summary>
    /// Opens a new master (O_RDWR | O_NOCTTY | O_CLOEXEC), granted and unlocked; <paramref name="slavePath"/>
    /// is its slave (/dev/pts/N). Throws <see cref="IOException"/> ("cannot allocate a pseudo-terminal: …")
    /// with the master closed when any step fails.
    /// </summary>
    public static SafeFd OpenMaster(out string slavePath)
    {
        int fd = LibCExtra.posix_openpt(LibC.O_RDWR | LibC.O_NOCTTY | LibC.O_CLOEXEC);
        if (fd < 0)
        {
            throw Failed("posix_openpt", Errno.Last);
        }

        return Unlock(new SafeFd(fd), out slavePath);
    }

    /// <summary>
    /// grantpt, unlockpt and ptsname_r on <paramref name="master"/>, which this takes over: returned on
    /// success, disposed on failure.
    /// </summary>
    internal static SafeFd Unlock(SafeFd master, out string slavePath)
    {
        try
        {
            if (LibCExtra.grantpt(master.Fd) != 0)
            {
                throw Failed("grantpt", Errno.Last);
            }

            if (LibCExtra.unlockpt(master.Fd) != 0)
            {
                throw Failed("unlockpt", Errno.Last);
            }

            byte* name = stackalloc byte[NameCapacity];
            int error = LibCExtra.ptsname_r(master.Fd, name, NameCapacity);
            if (error != 0)
            {
                throw Failed("ptsname_r", error);
            }

            int length = new ReadOnlySpan<byte>(name, NameCapacity).IndexOf((byte)0);
            slavePath = Encoding.ASCII.GetString(name, length < 0 ? NameCapacity : length);
            return master;
        }
        catch
        {
            master.Dispose();
            throw;
        }
    }

    private static IOException Failed(string call, int errno) =>
        new($"cannot allocate a pseudo-terminal: {call}: {Errno.Describe(errno)}", errno);
}
