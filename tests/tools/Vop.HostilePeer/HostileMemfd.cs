using System.Text;
using Tmds.Linux;
using Vop.Links.Interop;
using Vop.Links.Windows;

namespace Vop.HostilePeer;

/// <summary>How the hostile device side's memfd is made.</summary>
internal enum MemfdSealing
{
    Sealed,     // SHRINK|GROW|SEAL, as vop's own device side does it
    Unsealed,   // MFD_ALLOW_SEALING but no seals: a careful receiver can still add SHRINK itself
    Unsealable, // no MFD_ALLOW_SEALING (seals 0x1): nobody can ever seal it
}

/// <summary>
/// The hostile device side's window: a memfd it maps itself. SharedWindow.MapFd would seal an unsealed
/// fd or refuse an unsealable one, which is right for a victim and useless for the attacker.
/// </summary>
internal sealed unsafe class HostileMemfd : IDisposable
{
    private readonly SafeMapping _mapping;

    private HostileMemfd(SafeFd fd, SafeMapping mapping, ulong size)
    {
        Fd = fd;
        _mapping = mapping;
        Size = size;
    }

    public SafeFd Fd { get; }

    public ulong Size { get; }

    public WindowAccessor Accessor => new(_mapping.Pointer, Size);

    public static HostileMemfd Create(ulong size, MemfdSealing sealing)
    {
        byte[] name = Encoding.UTF8.GetBytes("vop-hostile\0");
        int raw;
        fixed (byte* p = name)
        {
            raw = Errno.Check(LibC.memfd_create(p, LibC.MFD_CLOEXEC | (sealing == MemfdSealing.Unsealable ? 0 : LibC.MFD_ALLOW_SEALING)), "memfd_create");
        }

        var fd = new SafeFd(raw);
        try
        {
            Errno.Check(LibC.ftruncate(raw, (off_t)(long)size), $"ftruncate(memfd, {size})");
            if (sealing == MemfdSealing.Sealed)
            {
                Errno.Check(LibC.fcntl(raw, LibC.F_ADD_SEALS, LibC.F_SEAL_SHRINK | LibC.F_SEAL_GROW | LibC.F_SEAL_SEAL), "fcntl(F_ADD_SEALS)");
            }

            void* at = LibC.mmap(null, (size_t)size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, raw, 0);
            if (at == (void*)-1)
            {
                Errno.Throw($"mmap(memfd, {size})");
            }

            return new HostileMemfd(fd, new SafeMapping((IntPtr)at, size), size);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _mapping.Dispose();
        Fd.Dispose();
    }
}
