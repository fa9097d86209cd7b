using System.Text;
using Tmds.Linux;
using Vop.Links.Interop;

namespace Vop.Links.Windows;

/// <summary>
/// A mapped shared window: a memfd, a file (shm, hugetlbfs, a PCI BAR resource file) at an offset, or
/// anonymous memory fenced by PROT_NONE guard pages. Owns its mapping and, when it has one, its fd.
/// </summary>
public sealed unsafe class SharedWindow : IDisposable
{
    private const ulong PageSize = 4096;

    private readonly SafeMapping _mapping;
    private readonly ulong _innerOffset;

    private SharedWindow(SafeMapping mapping, ulong innerOffset, ulong size, SafeFd? fd, string description)
    {
        _mapping = mapping;
        _innerOffset = innerOffset;
        Size = size;
        Fd = fd;
        Description = description;
    }

    /// <summary>Window size in bytes.</summary>
    public ulong Size { get; }

    /// <summary>The fd backing the window, when there is one (memfd, file); null for anonymous memory.</summary>
    public SafeFd? Fd { get; }

    /// <summary>What backs the window, for logs.</summary>
    public string Description { get; }

    public WindowAccessor Accessor
    {
        get
        {
            ObjectDisposedException.ThrowIf(_mapping.IsClosed, this);
            return new WindowAccessor(_mapping.Pointer + _innerOffset, Size);
        }
    }

    /// <summary>
    /// Creates a memfd of <paramref name="size"/> bytes, seals it against resizing (so nobody it is handed to
    /// can shrink it under our mapping) and maps it shared.
    /// </summary>
    public static SharedWindow CreateMemfd(string name, ulong size)
    {
        CheckPlatform();
        CheckSize(size);
        byte[] nameBytes = Encoding.UTF8.GetBytes(name + "\0");
        int fd;
        fixed (byte* p = nameBytes)
        {
            fd = Errno.Check(LibC.memfd_create(p, LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING), $"memfd_create({name})");
        }

        var owned = new SafeFd(fd);
        try
        {
            Errno.Check(LibC.ftruncate(fd, (off_t)(long)size), $"ftruncate(memfd {name}, {size})");
            MemorySeals.SealOwn(owned, $"memfd {name}");
            return Map(owned, 0, size, $"memfd:{name}");
        }
        catch
        {
            owned.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Maps an fd received from a peer (ivshmem server's shm fd). Takes ownership of <paramref name="fd"/>.
    /// The fd must not be able to shrink (<see cref="MemorySeals.EnsureCannotShrink"/>): otherwise the
    /// peer could turn our next access into SIGBUS. Throws <see cref="LinkRefusedException"/> when it can.
    /// </summary>
    public static SharedWindow MapFd(SafeFd fd, ulong offset, ulong size, string description)
    {
        CheckPlatform();
        CheckSize(size);
        if (MemorySeals.EnsureCannotShrink(fd) is string unsafeMemory)
        {
            fd.Dispose();
            throw new LinkRefusedException(LinkCounters.Refusal.UnsealedMemory, $"{description}: {unsafeMemory}");
        }

        return Map(fd, offset, size, description);
    }

    /// <summary>
    /// Maps <paramref name="size"/> bytes of <paramref name="path"/> at <paramref name="offset"/>; with
    /// <paramref name="create"/> the file is created (mode 0600, never through a symlink) and grown to
    /// offset+size when shorter. The file must belong to us (or root) and be writable by nobody else
    /// (<see cref="MemorySeals.CheckWindowFile"/>): throws <see cref="LinkRefusedException"/> otherwise.
    /// </summary>
    public static SharedWindow OpenFile(string path, ulong offset, ulong size, bool create)
    {
        CheckPlatform();
        CheckSize(size);
        byte[] pathBytes = Encoding.UTF8.GetBytes(path + "\0");
        int flags = LibC.O_RDWR | LibC.O_CLOEXEC | (create ? LibC.O_CREAT | LibC.O_NOFOLLOW : 0);
        int fd;
        fixed (byte* p = pathBytes)
        {
            fd = Errno.Check(LibC.open(p, flags, (mode_t)0x180), $"open({path})");
        }

        var owned = new SafeFd(fd);
        try
        {
            if (MemorySeals.CheckWindowFile(owned, path) is string unsafeFile)
            {
                throw new LinkRefusedException(LinkCounters.Refusal.UnsafeWindowFile, unsafeFile);
            }

            if (create)
            {
                var length = new FileInfo(path).Length;
                if ((ulong)length < offset + size)
                {
                    Errno.Check(LibC.ftruncate(fd, (off_t)(long)(offset + size)), $"ftruncate({path})");
                }
            }

            return Map(owned, offset, size, $"file:{path}@0x{offset:x}");
        }
        catch
        {
            owned.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Anonymous private memory with an inaccessible (PROT_NONE) page on both sides, so any access
    /// outside the window faults at once. Used for card-local memory and by the hostile-peer tests.
    /// </summary>
    public static SharedWindow CreateGuarded(ulong size)
    {
        CheckSize(size);
        ulong rounded = (size + PageSize - 1) & ~(PageSize - 1);
        ulong total = rounded + (2 * PageSize);
        void* p = LibC.mmap(null, (size_t)total, LibC.PROT_NONE, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS, -1, 0);
        if (p == (void*)-1)
        {
            Errno.Throw($"mmap(anonymous, {total})");
        }

        var mapping = new SafeMapping((IntPtr)p, total);
        if (LibC.mprotect((byte*)p + PageSize, (size_t)rounded, LibC.PROT_READ | LibC.PROT_WRITE) != 0)
        {
            mapping.Dispose();
            Errno.Throw("mprotect(window)");
        }

        // Place the window so that it ends exactly at the upper guard page: an access one byte past
        // the end faults even when size is not a multiple of the page size.
        ulong inner = PageSize + (rounded - size);
        return new SharedWindow(mapping, inner, size, null, $"guarded:{size}");
    }

    private static SharedWindow Map(SafeFd fd, ulong offset, ulong size, string description)
    {
        ulong alignedOffset = offset & ~(PageSize - 1);
        ulong inner = offset - alignedOffset;
        ulong length = size + inner;
        void* p = LibC.mmap(null, (size_t)length, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd.Fd, (off_t)(long)alignedOffset);
        if (p == (void*)-1)
        {
            Errno.Throw($"mmap({description}, {size} bytes)");
        }

        return new SharedWindow(new SafeMapping((IntPtr)p, length), inner, size, fd, description);
    }

    private static void CheckSize(ulong size)
    {
        if (size < PageSize || size > (1UL << 40))
        {
            throw new ArgumentOutOfRangeException(nameof(size), $"window size {size} must be between 4 KiB and 1 TiB");
        }
    }

    private static void CheckPlatform()
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("the vop window layout is little-endian; this host is not");
        }
    }

    public void Dispose()
    {
        _mapping.Dispose();
        Fd?.Dispose();
    }
}
