using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Vop.Links.Windows;

/// <summary>
/// The one typed accessor over a shared window. Every access names its offset from the window base and
/// is bounds-checked here, so ring code never dereferences a raw pointer by itself and a bad offset
/// becomes an exception in the caller's validation path instead of a touch outside the window.
/// Little-endian only: the layout is little-endian and so are the hosts we run on (checked at map time).
/// </summary>
public readonly unsafe struct WindowAccessor
{
    private readonly byte* _base;
    private readonly ulong _size;

    public WindowAccessor(byte* baseAddress, ulong size)
    {
        _base = baseAddress;
        _size = size;
    }

    public ulong Size => _size;

    public bool IsNull => _base == null;

    /// <summary>True when [offset, offset+length) lies inside the window; overflow-safe.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Contains(ulong offset, ulong length) => offset <= _size && length <= _size - offset;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte* At(ulong offset, ulong width)
    {
        if (offset > _size - width || _size < width)
        {
            ThrowOutside(offset, width);
        }

        return _base + offset;
    }

    public byte ReadU8(ulong offset) => *At(offset, 1);

    public ushort ReadU16(ulong offset) => Unsafe.ReadUnaligned<ushort>(At(offset, 2));

    public uint ReadU32(ulong offset) => Unsafe.ReadUnaligned<uint>(At(offset, 4));

    public ulong ReadU64(ulong offset) => Unsafe.ReadUnaligned<ulong>(At(offset, 8));

    public void WriteU8(ulong offset, byte value) => *At(offset, 1) = value;

    public void WriteU16(ulong offset, ushort value) => Unsafe.WriteUnaligned(At(offset, 2), value);

    public void WriteU32(ulong offset, uint value) => Unsafe.WriteUnaligned(At(offset, 4), value);

    public void WriteU64(ulong offset, ulong value) => Unsafe.WriteUnaligned(At(offset, 8), value);

    /// <summary>
    /// A whole ring ABI struct (<see cref="Rings.VirtqDesc"/>, <see cref="Rings.VirtqUsedElem"/>) at
    /// <paramref name="offset"/>: one bounds check covering all of it, then plain loads of the fields into
    /// the returned copy (little-endian layout on a little-endian host, so no byte swapping).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T Read<T>(ulong offset)
        where T : unmanaged => Unsafe.ReadUnaligned<T>(At(offset, (ulong)sizeof(T)));

    /// <summary>Writes a whole ring ABI struct at <paramref name="offset"/> after one bounds check (plain stores).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Write<T>(ulong offset, in T value)
        where T : unmanaged => Unsafe.WriteUnaligned(At(offset, (ulong)sizeof(T)), value);

    // Acquire loads and release stores must be naturally aligned to be single (atomic) accesses: Volatile
    // on a misaligned address is still ordered on x86/arm64 but may tear. The layout guarantees alignment
    // for every index, event and state word relative to the window base (SplitRingLayout.Validate rejects
    // misaligned rings) and the base itself is aligned (a mapping is); AtAligned asserts the absolute
    // address in debug builds.

    /// <summary>Acquire load: later reads cannot move before it.</summary>
    public ushort ReadU16Acquire(ulong offset) => Volatile.Read(ref Unsafe.AsRef<ushort>(AtAligned(offset, 2)));

    public uint ReadU32Acquire(ulong offset) => Volatile.Read(ref Unsafe.AsRef<uint>(AtAligned(offset, 4)));

    public ulong ReadU64Acquire(ulong offset) => Volatile.Read(ref Unsafe.AsRef<ulong>(AtAligned(offset, 8)));

    /// <summary>Release store: earlier writes (descriptors, payload) are visible before it.</summary>
    public void WriteU16Release(ulong offset, ushort value) => Volatile.Write(ref Unsafe.AsRef<ushort>(AtAligned(offset, 2)), value);

    public void WriteU32Release(ulong offset, uint value) => Volatile.Write(ref Unsafe.AsRef<uint>(AtAligned(offset, 4)), value);

    public void WriteU64Release(ulong offset, ulong value) => Volatile.Write(ref Unsafe.AsRef<ulong>(AtAligned(offset, 8)), value);

    /// <summary><see cref="At"/> for an atomic access: the address must be a multiple of the width (asserted in debug builds).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte* AtAligned(ulong offset, ulong width)
    {
        byte* p = At(offset, width);
        Debug.Assert(((nuint)p & (nuint)(width - 1)) == 0, $"atomic access of {width} bytes at offset 0x{offset:x} is not naturally aligned");
        return p;
    }

    /// <summary>
    /// Full fence. Needed between "publish my index" and "read the peer's event index": acquire and
    /// release alone allow the store to sit in the store buffer while the load runs ahead, and then both
    /// sides can decide not to notify (the lost-wakeup race of virtio 2.7.10 / 2.7.13).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void FullFence() => Interlocked.MemoryBarrier();

    /// <summary>A span over [offset, offset+length) of the window, bounds-checked.</summary>
    public Span<byte> Bytes(ulong offset, int length)
    {
        if (length < 0 || !Contains(offset, (ulong)length))
        {
            ThrowOutside(offset, (ulong)Math.Max(length, 0));
        }

        return new Span<byte>(_base + offset, length);
    }

    /// <summary>Raw address of a checked range, only for handing to syscalls (readv/writev into the window).</summary>
    public byte* Address(ulong offset, ulong length)
    {
        if (!Contains(offset, length))
        {
            ThrowOutside(offset, length);
        }

        return _base + offset;
    }

    /// <summary>Fills a range with zeroes.</summary>
    public void Clear(ulong offset, ulong length)
    {
        byte* p = Address(offset, length);
        while (length > 0)
        {
            uint chunk = (uint)Math.Min(length, 1u << 30);
            Unsafe.InitBlockUnaligned(p, 0, chunk);
            p += chunk;
            length -= chunk;
        }
    }

    [DoesNotReturn]
    private void ThrowOutside(ulong offset, ulong width) =>
        throw new WindowAccessException($"access of {width} bytes at offset 0x{offset:x} is outside the 0x{_size:x}-byte window");
}

/// <summary>Raised by <see cref="WindowAccessor"/> when an offset lies outside the window.</summary>
public sealed class WindowAccessException : Exception
{
    public WindowAccessException(string message)
        : base(message)
    {
    }

    public WindowAccessException()
    {
    }

    public WindowAccessException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
