using System.Runtime.InteropServices;

namespace Vop.Links.Rings;

/// <summary>
/// One entry of the used ring, struct virtq_used_elem (virtio 1.2 section 2.7.8): le32 id (the chain's head),
/// le32 len (bytes the device wrote); 8 bytes. Read and written whole like <see cref="VirtqDesc"/>.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public readonly record struct VirtqUsedElem
{
    /// <summary>sizeof(struct virtq_used_elem); also the used ring stride (pinned by LayoutTests).</summary>
    public const int Size = 8;

    public readonly uint Id;
    public readonly uint Len;

    public VirtqUsedElem(uint id, uint len)
    {
        Id = id;
        Len = len;
    }
}
