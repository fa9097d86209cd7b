using System.Runtime.CompilerServices;
using Vop.Links.Windows;

namespace Vop.Links.Pci;

/// <summary>
/// The doorbell and scratchpad registers of an NTB, mapped from its register BAR (or from a file standing
/// in for it). Every access goes through the block's <see cref="WindowAccessor"/>, so it is bounds-checked
/// against the mapping like any window access. On hardware (<see cref="NtbRegisterLayout.Emulated"/> false)
/// ringing writes the bit to the peer set register and clearing writes the bits back to the status register
/// (write-1-to-clear), each one plain store of the register's width. Emulated, the block is memory both
/// ends map, side A's peer set register being side B's status register: ringing ORs the bit in atomically
/// and clearing ANDs the bits out, so concurrent rings of different bits are never lost.
/// </summary>
public sealed class NtbRegisters : IDisposable
{
    private const ulong PageSize = 4096;

    private readonly SharedWindow _block;
    private readonly NtbRegisterLayout _layout;
    private readonly ulong _valid;
    private readonly ulong? _maskBefore;

    /// <summary>Uses <paramref name="block"/> (owned from now on) as the register block.</summary>
    public NtbRegisters(SharedWindow block, NtbRegisterLayout layout)
    {
        if (layout.Width is not (16 or 32 or 64) || layout.Bits < 1 || layout.Bits > layout.Width || layout.ScratchpadCount < NtbHandshake.Scratchpads)
        {
            block.Dispose();
            throw new ArgumentException($"NTB register layout: width {layout.Width} must be 16, 32 or 64, bits 1..width ({layout.Bits}), at least {NtbHandshake.Scratchpads} scratchpads ({layout.ScratchpadCount})", nameof(layout));
        }

        ulong w = (ulong)layout.Width / 8;
        if (layout.PeerSet % w != 0 || layout.Status % w != 0 || layout.Mask % w is not (null or 0) || layout.LocalScratchpads % 4 != 0 || layout.PeerScratchpads % 4 != 0)
        {
            block.Dispose();
            throw new ArgumentException($"NTB register layout: doorbell registers must be aligned to {w} bytes, scratchpads to 4", nameof(layout));
        }

        if (layout.Extent > block.Size)
        {
            block.Dispose();
            throw new ArgumentException($"NTB registers reach 0x{layout.Extent:x}, past the 0x{block.Size:x}-byte register block", nameof(layout));
        }

        _block = block;
        _layout = layout;
        _valid = layout.ValidMask;
        if (layout.Mask is ulong mask)
        {
            // vop polls the status register and takes no doorbell interrupt: mask the bits it uses (1 =
            // masked, as Linux's db_mask) and put the register back as it was on dispose.
            _maskBefore = Read(mask);
            Write(mask, _maskBefore.Value | _valid);
        }
    }

    /// <summary>
    /// Maps the register block of <paramref name="file"/>: the pages from its offset that hold every register
    /// of the layout. The file must exist (a register BAR is never created), belong to us or root, be writable
    /// by nobody else, and be long enough (a mapping past a file's end faults on access).
    /// </summary>
    public static NtbRegisters Open(NtbRegisterFile file)
    {
        ulong size = (file.Layout.Extent + PageSize - 1) & ~(PageSize - 1);
        if (!File.Exists(file.Path))
        {
            throw new IOException($"NTB registers: {file.Path} does not exist (the NTB's register BAR, or a file standing in for it)");
        }

        long length = new FileInfo(file.Path).Length;
        if ((ulong)length < file.Offset + size)
        {
            throw new IOException($"NTB registers: {file.Path} is {length} bytes; the register block needs 0x{file.Offset + size:x} (offset 0x{file.Offset:x} + 0x{size:x})");
        }

        return new NtbRegisters(SharedWindow.OpenFile(file.Path, file.Offset, size, create: false), file.Layout);
    }

    public NtbRegisterLayout Layout => _layout;

    /// <summary>Rings the peer on <paramref name="bits"/> (ntb_peer_db_set). Hot path: no allocation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void RingPeer(ulong bits)
    {
        bits &= _valid;
        if (_layout.Emulated)
        {
            Or(_layout.PeerSet, bits);
        }
        else
        {
            // The ring indices were published with ordinary stores into the memory window, a different BAR:
            // fence so they are issued before the doorbell write that tells the peer to look at them.
            Interlocked.MemoryBarrier();
            Write(_layout.PeerSet, bits);
        }
    }

    /// <summary>The doorbell bits the peer rang here and nobody cleared yet (ntb_db_read), valid bits only.</summary>
    public ulong ReadStatus() => Read(_layout.Status) & _valid;

    /// <summary>Clears <paramref name="bits"/> of the status register (ntb_db_clear: write 1s, or AND-NOT when emulated).</summary>
    public void Clear(ulong bits)
    {
        bits &= _valid;
        if (_layout.Emulated)
        {
            AndNot(_layout.Status, bits);
        }
        else
        {
            Write(_layout.Status, bits);
        }
    }

    /// <summary>Scratchpad <paramref name="index"/> as the peer wrote it into ours (ntb_spad_read).</summary>
    public uint ReadLocalScratchpad(int index) => _block.Accessor.ReadU32Acquire(_layout.LocalScratchpads + (4UL * (ulong)CheckIndex(index)));

    /// <summary>Writes the peer's scratchpad <paramref name="index"/> (ntb_peer_spad_write).</summary>
    public void WritePeerScratchpad(int index, uint value) => _block.Accessor.WriteU32Release(_layout.PeerScratchpads + (4UL * (ulong)CheckIndex(index)), value);

    private int CheckIndex(int index) => (uint)index < (uint)_layout.ScratchpadCount ? index : throw new ArgumentOutOfRangeException(nameof(index));

    private ulong Read(ulong offset)
    {
        WindowAccessor a = _block.Accessor;
        return _layout.Width switch
        {
            16 => a.ReadU16Acquire(offset),
            32 => a.ReadU32Acquire(offset),
            _ => a.ReadU64Acquire(offset),
        };
    }

    private void Write(ulong offset, ulong value)
    {
        WindowAccessor a = _block.Accessor;
        switch (_layout.Width)
        {
            case 16:
                a.WriteU16Release(offset, (ushort)value);
                break;
            case 32:
                a.WriteU32Release(offset, (uint)value);
                break;
            default:
                a.WriteU64Release(offset, value);
                break;
        }
    }

    private unsafe void Or(ulong offset, ulong bits)
    {
        byte* p = _block.Accessor.Address(offset, (ulong)_layout.Width / 8);
        switch (_layout.Width)
        {
            case 16:
                ref ushort r16 = ref Unsafe.AsRef<ushort>(p);
                ushort seen16;
                do
                {
                    seen16 = Volatile.Read(ref r16);
                }
                while (Interlocked.CompareExchange(ref r16, (ushort)(seen16 | bits), seen16) != seen16);
                break;
            case 32:
                Interlocked.Or(ref Unsafe.AsRef<uint>(p), (uint)bits);
                break;
            default:
                Interlocked.Or(ref Unsafe.AsRef<ulong>(p), bits);
                break;
        }
    }

    private unsafe void AndNot(ulong offset, ulong bits)
    {
        byte* p = _block.Accessor.Address(offset, (ulong)_layout.Width / 8);
        switch (_layout.Width)
        {
            case 16:
                ref ushort r16 = ref Unsafe.AsRef<ushort>(p);
                ushort seen16;
                do
                {
                    seen16 = Volatile.Read(ref r16);
                }
                while (Interlocked.CompareExchange(ref r16, (ushort)(seen16 & ~bits), seen16) != seen16);
                break;
            case 32:
                Interlocked.And(ref Unsafe.AsRef<uint>(p), ~(uint)bits);
                break;
            default:
                Interlocked.And(ref Unsafe.AsRef<ulong>(p), ~bits);
                break;
        }
    }

    public void Dispose()
    {
        if (_layout.Mask is ulong mask && _maskBefore is ulong before)
        {
            try
            {
                Write(mask, before);
            }
            catch (ObjectDisposedException)
            {
            }
        }

        _block.Dispose();
    }
}
