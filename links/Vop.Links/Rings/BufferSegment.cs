namespace Vop.Links.Rings;

/// <summary>One descriptor's worth of buffer: a range of the window and whether the device writes it.</summary>
public readonly record struct BufferSegment(ulong Offset, uint Length, bool DeviceWritable);

/// <summary>A chain popped by the device side, snapshotted: nothing in it is re-read from shared memory.</summary>
public readonly record struct DescriptorChain(
    ushort Head,
    int SegmentCount,
    int TotalDescriptors,
    ulong ReadableLength,
    ulong WritableLength)
{
    /// <summary>True when the chain had more descriptors than the caller's segment span could hold.</summary>
    public bool Truncated => TotalDescriptors > SegmentCount;
}

/// <summary>A used entry reaped by the driver side, validated against what it posted.</summary>
public readonly record struct UsedElement(ushort Head, uint Length, bool LengthValid);

/// <summary>The part of the window that descriptors may point at; checks are overflow-safe.</summary>
public readonly record struct BufferRegion(ulong Offset, ulong Length)
{
    public ulong End => Offset + Length;

    /// <summary>True when [addr, addr+len) lies inside the region, for any 64-bit addr and len.</summary>
    public bool Contains(ulong addr, ulong len) =>
        addr >= Offset && addr - Offset <= Length && len <= Length - (addr - Offset);
}
