using Tmds.Linux;
using Vop.Links.Interop;
using Vop.Links.Rings;
using Vop.Links.Windows;

namespace Vop.Links.VhostUser;

/// <summary>One region of a SET_MEM_TABLE: guest-physical range, its front-end (QEMU) virtual address, where in the fd.</summary>
public readonly record struct GuestMemoryRegion(ulong GuestPhysical, ulong Size, ulong UserAddress, ulong MmapOffset);

/// <summary>
/// A vhost-user front-end's guest memory as one window whose offset is the guest-physical address: one
/// PROT_NONE reservation as large as the highest region end, each region's fd mapped MAP_FIXED at its
/// guest-physical offset. Descriptor addresses are guest-physical, so the ring code reads them as window
/// offsets; <see cref="Regions"/> keeps it out of the holes. Ring addresses arrive as front-end virtual
/// addresses and are translated here.
/// </summary>
public sealed unsafe class GuestMemory : IDisposable
{
    /// <summary>The highest guest-physical end we reserve address space for.</summary>
    public const ulong MaxGuestPhysical = 1UL << 40;

    private const ulong PageSize = 4096;
    private readonly SafeMapping _reservation;
    private readonly GuestMemoryRegion[] _table;

    private GuestMemory(SafeMapping reservation, ulong size, GuestMemoryRegion[] table)
    {
        _reservation = reservation;
        Size = size;
        _table = table;
        Regions = new GuestRegions([.. table.Select(r => (r.GuestPhysical, r.Size))]);
    }

    /// <summary>Highest guest-physical end: the window's size.</summary>
    public ulong Size { get; }

    public GuestRegions Regions { get; }

    public IReadOnlyList<GuestMemoryRegion> Table => _table;

    public WindowAccessor Accessor => new(_reservation.Pointer, Size);

    /// <summary>Maps <paramref name="table"/>; <paramref name="fds"/>[i] backs region i. Throws <see cref="InvalidDataException"/> naming a bad region.</summary>
    public static GuestMemory Map(IReadOnlyList<GuestMemoryRegion> table, IReadOnlyList<SafeFd> fds)
    {
        if (table.Count == 0 || table.Count != fds.Count)
        {
            throw new InvalidDataException($"memory table has {table.Count} regions and {fds.Count} fds");
        }

        ulong end = 0;
        for (int i = 0; i < table.Count; i++)
        {
            GuestMemoryRegion r = table[i];
            if (r.Size == 0 || (r.GuestPhysical | r.MmapOffset) % PageSize != 0)
            {
                throw new InvalidDataException($"memory region {i} (gpa 0x{r.GuestPhysical:x}, size 0x{r.Size:x}, offset 0x{r.MmapOffset:x}) is empty or not page-aligned");
            }

            if (r.GuestPhysical >= MaxGuestPhysical || r.Size > MaxGuestPhysical - r.GuestPhysical ||
                r.UserAddress + r.Size < r.UserAddress || r.MmapOffset + r.Size < r.MmapOffset)
            {
                throw new InvalidDataException($"memory region {i} (gpa 0x{r.GuestPhysical:x}, size 0x{r.Size:x}) lies beyond 1 TiB or wraps");
            }

            for (int j = 0; j < i; j++)
            {
                GuestMemoryRegion o = table[j];
                if (r.GuestPhysical < o.GuestPhysical + o.Size && o.GuestPhysical < r.GuestPhysical + r.Size)
                {
                    throw new InvalidDataException($"memory regions {j} and {i} overlap");
                }
            }

            // A memfd that could shrink later would SIGBUS us then: it must carry F_SEAL_SHRINK (QEMU's
            // memory-backend-memfd seals by default) or still accept it from us. A file-backed region
            // (hugetlbfs, /dev/shm) cannot be sealed; only its owner, the front-end, can shrink it (docs).
            if (MemorySeals.IsMemfd(fds[i]) && MemorySeals.EnsureCannotShrink(fds[i]) is string unsealed)
            {
                throw new InvalidDataException($"memory region {i}: {unsealed}");
            }

            // A region past the end of its file would SIGBUS on first touch: refuse it here.
            long fileSize = LibC.lseek(fds[i].Fd, 0, LibC.SEEK_END);
            if (fileSize >= 0 && (ulong)fileSize < r.MmapOffset + r.Size)
            {
                throw new InvalidDataException($"memory region {i} needs 0x{r.MmapOffset + r.Size:x} bytes of its fd, which holds 0x{fileSize:x}");
            }

            end = Math.Max(end, r.GuestPhysical + r.Size);
        }

        ulong reserve = (end + PageSize - 1) & ~(PageSize - 1);
        void* p = LibC.mmap(null, (size_t)reserve, LibC.PROT_NONE, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_NORESERVE, -1, 0);
        if (p == (void*)-1)
        {
            Errno.Throw($"mmap(reserve {reserve} bytes of guest address space)");
        }

        var reservation = new SafeMapping((IntPtr)p, reserve);
        try
        {
            for (int i = 0; i < table.Count; i++)
            {
                GuestMemoryRegion r = table[i];
                ulong length = (r.Size + PageSize - 1) & ~(PageSize - 1);
                void* at = (byte*)p + r.GuestPhysical;
                void* got = LibC.mmap(at, (size_t)length, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | LibC.MAP_FIXED | LibC.MAP_NORESERVE, fds[i].Fd, (off_t)(long)r.MmapOffset);
                if (got != at)
                {
                    Errno.Throw($"mmap(memory region {i}, gpa 0x{r.GuestPhysical:x}, {r.Size} bytes)");
                }
            }

            return new GuestMemory(reservation, end, [.. table]);
        }
        catch
        {
            reservation.Dispose();
            throw;
        }
    }

    /// <summary>Translates a front-end virtual range (SET_VRING_ADDR) to guest-physical; false when not wholly inside one region.</summary>
    public bool TryTranslateUser(ulong userAddress, ulong length, out ulong guestPhysical)
    {
        foreach (GuestMemoryRegion r in _table)
        {
            if (new BufferRegion(r.UserAddress, r.Size).Contains(userAddress, length))
            {
                guestPhysical = r.GuestPhysical + (userAddress - r.UserAddress);
                return true;
            }
        }

        guestPhysical = 0;
        return false;
    }

    /// <summary>Unmaps the reservation and with it every region mapped inside it.</summary>
    public void Dispose() => _reservation.Dispose();
}
