using System.Runtime.InteropServices;

namespace Vop.Links.Rings;

/// <summary>
/// One entry of the descriptor table, struct virtq_desc (virtio 1.2 section 2.7.5): le64 addr, le32 len,
/// le16 flags, le16 next; 16 bytes, no padding. Read and written whole through
/// <see cref="Windows.WindowAccessor.Read{T}"/> / <see cref="Windows.WindowAccessor.Write{T}"/>: one bounds
/// check for the entry, the fields then come from the one copy (a racing peer cannot change a field between
/// its validation and its use). The layout is little-endian and so is every host we run on (checked at map time).
/// Here <c>addr</c> is an offset from the window base (or a guest-physical address turned into one).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public readonly record struct VirtqDesc
{
    /// <summary>sizeof(struct virtq_desc); also the table stride (pinned by LayoutTests).</summary>
    public const int Size = 16;

    public readonly ulong Addr;
    public readonly uint Len;
    public readonly ushort Flags;
    public readonly ushort Next;

    public VirtqDesc(ulong addr, uint len, ushort flags, ushort next)
    {
        Addr = addr;
        Len = len;
        Flags = flags;
        Next = next;
    }
}
