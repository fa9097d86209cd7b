using System.Runtime.CompilerServices;
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

    // The ring ABI in one place (virtio 1.2 sections 2.7.5-2.7.8; docs/wire-format.md). The descriptor
    // table is an array of VirtqDesc. virtq_avail and virtq_used share one shape: le16 flags, le16 idx,
    // ring[size], then one le16 event index (used_event after the avail ring, avail_event after the used
    // ring). Avail ring entries are le16 heads, used ring entries VirtqUsedElem.

    /// <summary>Alignment of the descriptor table, the avail ring and the used ring.</summary>
    public const ulong DescAlign = 16;
    public const ulong AvailAlign = 2;
    public const ulong UsedAlign = 4;

    /// <summary>Offset of <c>flags</c> in virtq_avail and virtq_used.</summary>
    public const ulong RingFlagsField = 0;

    /// <summary>Offset of <c>idx</c> in virtq_avail and virtq_used.</summary>
    public const ulong RingIdxField = 2;

    /// <summary>Offset of <c>ring[0]</c> in virtq_avail and virtq_used.</summary>
    public const ulong RingEntriesField = 4;

    /// <summary>Bytes of one avail ring entry (le16 head).</summary>
    public const ulong AvailEntrySize = sizeof(ushort);

    /// <summary>Bytes of one used ring entry.</summary>
    public const ulong UsedEntrySize = VirtqUsedElem.Size;

    /// <summary>Bytes of one descriptor table entry.</summary>
    public const ulong DescEntrySize = VirtqDesc.Size;

    /// <summary>Bytes of the trailing event index (used_event, avail_event).</summary>
    public const ulong RingEventSize = sizeof(ushort);

    public static ulong DescBytes(int size) => DescEntrySize * (ulong)size;

    /// <summary>flags, idx, ring[size], used_event.</summary>
    public static ulong AvailBytes(int size) => RingEntriesField + (AvailEntrySize * (ulong)size) + RingEventSize;

    /// <summary>flags, idx, ring[size] of {id, len}, avail_event.</summary>
    public static ulong UsedBytes(int size) => RingEntriesField + (UsedEntrySize * (ulong)size) + RingEventSize;

    public ulong AvailFlags => AvailOffset + RingFlagsField;
    public ulong AvailIdx => AvailOffset + RingIdxField;
    public ulong AvailRing => AvailOffset + RingEntriesField;
    public ulong UsedEvent => AvailRing + (AvailEntrySize * Size);
    public ulong UsedFlags => UsedOffset + RingFlagsField;
    public ulong UsedIdx => UsedOffset + RingIdxField;
    public ulong UsedRing => UsedOffset + RingEntriesField;
    public ulong AvailEvent => UsedRing + (UsedEntrySize * Size);

    /// <summary>Offset of descriptor <paramref name="index"/> (a <see cref="VirtqDesc"/>); the caller checks index &lt; Size.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Desc(ushort index) => DescOffset + (DescEntrySize * index);

    /// <summary>Offset of avail ring entry <paramref name="slot"/> (le16 head); the caller masks the slot.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong AvailEntry(ushort slot) => AvailRing + (AvailEntrySize * slot);

    /// <summary>Offset of used ring entry <paramref name="slot"/> (a <see cref="VirtqUsedElem"/>); the caller masks the slot.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong UsedEntry(ushort slot) => UsedRing + (UsedEntrySize * slot);

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

        if ((DescOffset & (DescAlign - 1)) != 0 || (AvailOffset & (AvailAlign - 1)) != 0 || (UsedOffset & (UsedAlign - 1)) != 0)
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
