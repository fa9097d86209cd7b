using Vop.Links.Windows;

namespace Vop.Links.Rings;

/// <summary>
/// Where one split virtqueue lives in the window (virtio 1.2 section 2.7): descriptor table (16-byte
/// aligned), avail ring (2), used ring (4). Offsets are from the window base.
/// </summary>
public readonly record struct SplitRingLayout(ushort Size, ulong DescOffset, ulong AvailOffset, ulong UsedOffset)
{
    public const int MaxSize = 32768;

    public const ushort DescFlagNext = 1;
    public const ushort DescFlagWrite = 2;
    public const ushort DescFlagIndirect = 4;
    public const ushort AvailFlagNoInterrupt = 1;
    public const ushort UsedFlagNoNotify = 1;

    public static ulong DescBytes(int size) => 16UL * (ulong)size;

    /// <summary>flags, idx, ring[size], used_event.</summary>
    public static ulong AvailBytes(int size) => 6 + (2UL * (ulong)size);

    /// <summary>flags, idx, ring[size] of {id, len}, avail_event.</summary>
    public static ulong UsedBytes(int size) => 6 + (8UL * (ulong)size);

    public ulong AvailFlags => AvailOffset;
    public ulong AvailIdx => AvailOffset + 2;
    public ulong AvailRing => AvailOffset + 4;
    public ulong UsedEvent => AvailOffset + 4 + (2UL * Size);
    public ulong UsedFlags => UsedOffset;
    public ulong UsedIdx => UsedOffset + 2;
    public ulong UsedRing => UsedOffset + 4;
    public ulong AvailEvent => UsedOffset + 4 + (8UL * Size);

    public static bool IsValidSize(int size) => size >= 1 && size <= MaxSize && (size & (size - 1)) == 0;

    /// <summary>The parts of a ring, in table order: 0 desc, 1 avail, 2 used.</summary>
    public const int PartCount = 3;

    public static string PartName(int part) => part switch
    {
        0 => "desc",
        1 => "avail",
        _ => "used",
    };

    /// <summary>Start and length of part <paramref name="part"/> (0 desc, 1 avail, 2 used).</summary>
    public (ulong Start, ulong Length) Part(int part) => part switch
    {
        0 => (DescOffset, DescBytes(Size)),
        1 => (AvailOffset, AvailBytes(Size)),
        _ => (UsedOffset, UsedBytes(Size)),
    };

    /// <summary>
    /// Checks the layout against a window and the buffer region: power-of-two size, alignment, every part
    /// inside the window, no part overlapping another or the buffer region. With <paramref name="regions"/>
    /// (guest memory) every part must instead lie inside one region and may sit among the buffers.
    /// Where the parts sit inside the window is the caller's rule (the vop driver side requires the ring
    /// area, see DriverSlot). Returns null when valid, else what is wrong.
    /// </summary>
    public string? Validate(in WindowAccessor window, BufferRegion buffers, GuestRegions? regions = null)
    {
        if (!IsValidSize(Size))
        {
            return $"queue size {Size} is not a power of two in 1..{MaxSize}";
        }

        if ((DescOffset & 15) != 0 || (AvailOffset & 1) != 0 || (UsedOffset & 3) != 0)
        {
            return "ring offsets are misaligned (desc 16, avail 2, used 4)";
        }

        for (int i = 0; i < PartCount; i++)
        {
            (ulong start, ulong length) = Part(i);
            if (!window.Contains(start, length))
            {
                return $"{PartName(i)} at 0x{start:x} is outside the window";
            }

            if (regions is not null && !regions.Contains(start, length))
            {
                return $"{PartName(i)} at 0x{start:x} is not inside guest memory";
            }

            if (regions is null && Overlap(start, length, buffers.Offset, buffers.Length))
            {
                return $"{PartName(i)} at 0x{start:x} overlaps the buffer region";
            }

            for (int j = 0; j < i; j++)
            {
                (ulong otherStart, ulong otherLength) = Part(j);
                if (Overlap(start, length, otherStart, otherLength))
                {
                    return $"ring parts overlap each other ({PartName(i)} at 0x{start:x}, {PartName(j)} at 0x{otherStart:x})";
                }
            }
        }

        return null;
    }

    /// <summary>
    /// True when [aStart, aStart+aLength) and [bStart, bStart+bLength) share a byte. Never adds an offset
    /// to a length, so it holds for any 64-bit values a hostile peer can write (empty ranges share nothing).
    /// </summary>
    public static bool Overlap(ulong aStart, ulong aLength, ulong bStart, ulong bLength) =>
        aLength != 0 && bLength != 0 && (aStart <= bStart ? bStart - aStart < aLength : aStart - bStart < bLength);

    /// <summary>virtio's vring_need_event: notify iff new_idx passed event_idx since old_idx.</summary>
    public static bool NeedEvent(ushort eventIdx, ushort newIdx, ushort oldIdx) =>
        (ushort)(newIdx - eventIdx - 1) < (ushort)(newIdx - oldIdx);
}
