using Vop.Links.Rings;
using Vop.Links.Windows;

namespace Vop.Links.Transport;

/// <summary>What the header says about the window once validated.</summary>
public readonly record struct WindowGeometry(ulong WindowSize, ulong RingAreaOffset, ulong RingAreaSize, BufferRegion Buffers);

/// <summary>Writes (device side) and validates (driver side) the window header.</summary>
public static class WindowHeader
{
    /// <summary>The ring area starts on a page, as Initialize places it; the driver side refuses anything else.</summary>
    public const ulong RingAreaAlignment = 4096;

    /// <summary>
    /// Lays out a fresh window: header, empty device table, ring area of <paramref name="ringAreaSize"/>
    /// bytes after the table, buffer region for the rest. The magic is stored last with release semantics
    /// so a driver that sees it also sees every other header field.
    /// </summary>
    public static WindowGeometry Initialize(in WindowAccessor w, ulong ringAreaSize)
    {
        const ulong Page = 4096;
        ulong ringStart = (WindowLayout.TableEnd + Page - 1) & ~(Page - 1);
        ringAreaSize = (ringAreaSize + Page - 1) & ~(Page - 1);
        ulong bufferStart = ringStart + ringAreaSize;
        if (bufferStart + Page > w.Size)
        {
            throw new ArgumentException($"window of {w.Size} bytes is too small for a {ringAreaSize}-byte ring area and a buffer region");
        }

        var geometry = new WindowGeometry(w.Size, ringStart, ringAreaSize, new BufferRegion(bufferStart, w.Size - bufferStart));
        w.WriteU32Release(WindowLayout.HeaderMagic, 0);
        w.Clear(0, bufferStart);
        HeaderImage.Write(w, geometry);
        return geometry;
    }

    /// <summary>
    /// Reads the header written by the device side and checks it against our mapping. Returns null and the
    /// geometry when usable, else one line saying what is wrong (the header may simply not be written yet).
    /// </summary>
    public static string? TryRead(in WindowAccessor w, out WindowGeometry geometry)
    {
        geometry = default;
        uint magic = w.ReadU32Acquire(WindowLayout.HeaderMagic);
        if (magic != WindowLayout.Magic)
        {
            return magic == 0 ? "window header not written yet" : $"bad window magic 0x{magic:x8}";
        }

        ushort major = w.ReadU16(WindowLayout.HeaderVersionMajor);
        if (major != WindowLayout.VersionMajor)
        {
            return $"window layout version {major} is not supported (this build speaks {WindowLayout.VersionMajor})";
        }

        ulong size = w.ReadU64(WindowLayout.HeaderWindowSize);
        uint table = w.ReadU32(WindowLayout.HeaderTableOffset);
        ushort slots = w.ReadU16(WindowLayout.HeaderSlotCount);
        ushort slotSize = w.ReadU16(WindowLayout.HeaderSlotSize);
        ulong ringOff = w.ReadU64(WindowLayout.HeaderRingAreaOffset);
        ulong ringSize = w.ReadU64(WindowLayout.HeaderRingAreaSize);
        ulong bufOff = w.ReadU64(WindowLayout.HeaderBufferOffset);
        ulong bufSize = w.ReadU64(WindowLayout.HeaderBufferSize);
        if (size != w.Size)
        {
            return $"window header says {size} bytes but {w.Size} are mapped";
        }

        if (table != WindowLayout.TableOffset || slots != WindowLayout.SlotCount || slotSize != WindowLayout.SlotSize)
        {
            return "device table geometry does not match layout version 1";
        }

        // The ring area after the table keeps every queue (which must lie inside it) off the header, the
        // state blocks, the doorbell counters and the table; the buffer region after it keeps buffers off
        // the rings. Contains is overflow-safe, and once it holds ringOff + ringSize cannot wrap.
        if (ringOff < WindowLayout.TableEnd)
        {
            return $"ring area at 0x{ringOff:x} starts inside the device table or before it (the table ends at 0x{WindowLayout.TableEnd:x})";
        }

        if ((ringOff & (RingAreaAlignment - 1)) != 0)
        {
            return $"ring area at 0x{ringOff:x} is not {RingAreaAlignment}-byte aligned";
        }

        if (!w.Contains(ringOff, ringSize))
        {
            return $"ring area at 0x{ringOff:x} of 0x{ringSize:x} bytes lies outside the window";
        }

        if (bufOff < ringOff + ringSize)
        {
            return $"buffer region at 0x{bufOff:x} starts before the ring area ends (0x{ringOff + ringSize:x})";
        }

        if (bufSize == 0)
        {
            return "buffer region is empty";
        }

        if (!w.Contains(bufOff, bufSize))
        {
            return $"buffer region at 0x{bufOff:x} of 0x{bufSize:x} bytes lies outside the window";
        }

        geometry = new WindowGeometry(size, ringOff, ringSize, new BufferRegion(bufOff, bufSize));
        return null;
    }
}
