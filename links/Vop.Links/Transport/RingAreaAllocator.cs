using Vop.Links.Rings;

namespace Vop.Links.Transport;

/// <summary>
/// Device side: carves split rings out of the ring area. Each part starts on its own cache line, and the
/// used ring (device-written) never shares a line with the driver-written desc/avail parts.
/// </summary>
public sealed class RingAreaAllocator
{
    private const ulong Line = 64;
    private readonly ulong _end;
    private ulong _next;

    public RingAreaAllocator(in WindowGeometry geometry)
    {
        _next = geometry.RingAreaOffset;
        _end = geometry.RingAreaOffset + geometry.RingAreaSize;
    }

    /// <summary>Bytes one ring of <paramref name="size"/> takes, with alignment padding.</summary>
    public static ulong BytesFor(int size) =>
        Align(SplitRingLayout.DescBytes(size)) + Align(SplitRingLayout.AvailBytes(size)) + Align(SplitRingLayout.UsedBytes(size));

    public SplitRingLayout Allocate(ushort size)
    {
        if (!SplitRingLayout.IsValidSize(size))
        {
            throw new ArgumentOutOfRangeException(nameof(size), $"queue size {size} must be a power of two up to {SplitRingLayout.MaxSize}");
        }

        ulong desc = _next;
        ulong avail = desc + Align(SplitRingLayout.DescBytes(size));
        ulong used = avail + Align(SplitRingLayout.AvailBytes(size));
        ulong end = used + Align(SplitRingLayout.UsedBytes(size));
        if (end > _end)
        {
            throw new InvalidOperationException($"ring area is full: a queue of {size} needs {BytesFor(size)} more bytes");
        }

        _next = end;
        return new SplitRingLayout(size, desc, avail, used);
    }

    private static ulong Align(ulong n) => (n + Line - 1) & ~(Line - 1);
}
