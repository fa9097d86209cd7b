using System.Buffers.Binary;
using Vop.Links.Windows;

namespace Vop.Links.Transport;

/// <summary>
/// The window header (device-owned, docs/wire-format.md) as bytes: written on layout, compared and
/// rewritten by the device side's self-repair, so a scribbled header heals without a restart.
/// </summary>
public static class HeaderImage
{
    public const int Bytes = 0x40; // the fields and the reserved tail (zero)

    /// <summary>Renders the header for <paramref name="g"/>, magic included.</summary>
    public static void Render(in WindowGeometry g, Span<byte> image)
    {
        image.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(image[(int)WindowLayout.HeaderMagic..], WindowLayout.Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(image[(int)WindowLayout.HeaderVersionMajor..], WindowLayout.VersionMajor);
        BinaryPrimitives.WriteUInt16LittleEndian(image[(int)WindowLayout.HeaderVersionMinor..], WindowLayout.VersionMinor);
        BinaryPrimitives.WriteUInt64LittleEndian(image[(int)WindowLayout.HeaderWindowSize..], g.WindowSize);
        BinaryPrimitives.WriteUInt32LittleEndian(image[(int)WindowLayout.HeaderTableOffset..], (uint)WindowLayout.TableOffset);
        BinaryPrimitives.WriteUInt16LittleEndian(image[(int)WindowLayout.HeaderSlotCount..], WindowLayout.SlotCount);
        BinaryPrimitives.WriteUInt16LittleEndian(image[(int)WindowLayout.HeaderSlotSize..], WindowLayout.SlotSize);
        BinaryPrimitives.WriteUInt64LittleEndian(image[(int)WindowLayout.HeaderRingAreaOffset..], g.RingAreaOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(image[(int)WindowLayout.HeaderRingAreaSize..], g.RingAreaSize);
        BinaryPrimitives.WriteUInt64LittleEndian(image[(int)WindowLayout.HeaderBufferOffset..], g.Buffers.Offset);
        BinaryPrimitives.WriteUInt64LittleEndian(image[(int)WindowLayout.HeaderBufferSize..], g.Buffers.Length);
    }

    /// <summary>True when the window's header reads exactly as rendered for <paramref name="g"/>.</summary>
    public static bool IsIntact(in WindowAccessor w, in WindowGeometry g)
    {
        Span<byte> expected = stackalloc byte[Bytes];
        Render(g, expected);
        return w.Bytes(WindowLayout.HeaderOffset, Bytes).SequenceEqual(expected);
    }

    /// <summary>
    /// Writes the header with the magic 0 first and last with a release store, so a driver that sees the
    /// magic also sees every other field.
    /// </summary>
    public static void Write(in WindowAccessor w, in WindowGeometry g)
    {
        Span<byte> image = stackalloc byte[Bytes];
        Render(g, image);
        w.WriteU32Release(WindowLayout.HeaderMagic, 0);
        image[4..].CopyTo(w.Bytes(WindowLayout.HeaderOffset + 4, Bytes - 4));
        w.WriteU32Release(WindowLayout.HeaderMagic, WindowLayout.Magic);
    }
}
