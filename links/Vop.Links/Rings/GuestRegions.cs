namespace Vop.Links.Rings;

/// <summary>
/// The parts of a window that are backed by memory, for windows with holes: a vhost-user guest's
/// physical address space (RAM below the VGA hole, RAM above it, RAM above 4 GiB). Descriptor addresses
/// must lie wholly inside one region; the holes are PROT_NONE and must never be touched.
/// At most a handful of regions, so a linear scan with the last hit first is cheapest.
/// </summary>
public sealed class GuestRegions
{
    private readonly BufferRegion[] _regions;
    private int _last;

    public GuestRegions(ReadOnlySpan<(ulong Start, ulong Length)> regions)
    {
        _regions = new BufferRegion[regions.Length];
        for (int i = 0; i < regions.Length; i++)
        {
            if (regions[i].Start + regions[i].Length < regions[i].Start)
            {
                throw new ArgumentException($"region at 0x{regions[i].Start:x} wraps the address space", nameof(regions));
            }

            _regions[i] = new BufferRegion(regions[i].Start, regions[i].Length);
        }
    }

    public int Count => _regions.Length;

    /// <summary>True when [addr, addr+len) lies inside one region; overflow-safe for any 64-bit inputs.</summary>
    public bool Contains(ulong addr, ulong len)
    {
        int last = _last;
        if (Within(last, addr, len))
        {
            return true;
        }

        for (int i = 0; i < _regions.Length; i++)
        {
            if (i != last && Within(i, addr, len))
            {
                _last = i;
                return true;
            }
        }

        return false;
    }

    private bool Within(int i, ulong addr, ulong len) => (uint)i < (uint)_regions.Length && _regions[i].Contains(addr, len);
}
