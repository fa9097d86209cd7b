namespace Vop.Links.Pci;

/// <summary>
/// Where an NTB's doorbell and scratchpad registers sit in its register BAR, named as Linux's ntb_hw
/// drivers use them: <see cref="PeerSet"/> is what <c>ntb_peer_db_set</c> writes (a 1 bit rings the peer;
/// Intel PDOORBELL, AMD DBREQ, IDT OUTDBELLSET, Switchtec odb), <see cref="Status"/> what
/// <c>ntb_db_read</c> reads and <c>ntb_db_clear</c> writes 1s to (the bits the peer rang here: Intel
/// DOORBELL, AMD DBSTAT, IDT INDBELLSTS, Switchtec idb), <see cref="Mask"/> the doorbell mask
/// (<c>ntb_db_set_mask</c>; 1 = interrupt masked), <see cref="LocalScratchpads"/> what <c>ntb_spad_read</c>
/// reads (written by the peer) and <see cref="PeerScratchpads"/> what <c>ntb_peer_spad_write</c> writes
/// (the peer's local scratchpads). Offsets are from the register block's start; doorbell registers are
/// <see cref="Width"/> bits wide, of which the low <see cref="Bits"/> are doorbells; scratchpads are 32 bits.
/// With <see cref="Emulated"/> the block is plain shared memory standing in for the BAR (a file both ends
/// map): setting is an atomic OR, clearing an atomic AND-NOT, instead of hardware register writes.
/// </summary>
public sealed record NtbRegisterLayout(
    ulong PeerSet,
    ulong Status,
    ulong? Mask,
    int Width,
    int Bits,
    ulong LocalScratchpads,
    ulong PeerScratchpads,
    int ScratchpadCount,
    bool Emulated)
{
    /// <summary>The doorbell bits vop may use: the low <see cref="Bits"/>.</summary>
    public ulong ValidMask => Bits >= 64 ? ulong.MaxValue : (1UL << Bits) - 1;

    /// <summary>The doorbell bit a vector rings: vectors beyond the bits share them, round robin.</summary>
    public int BitOf(int vector) => vector % Bits;

    /// <summary>One past the last byte of any register vop touches.</summary>
    public ulong Extent
    {
        get
        {
            ulong w = (ulong)Width / 8;
            ulong spads = 4UL * (ulong)ScratchpadCount;
            ulong end = Math.Max(PeerSet + w, Status + w);
            end = Math.Max(end, Mask is ulong m ? m + w : 0);
            end = Math.Max(end, LocalScratchpads + spads);
            return Math.Max(end, PeerScratchpads + spads);
        }
    }

    /// <summary>The registers by name and byte range, for overlap checks and messages.</summary>
    public IEnumerable<(string Name, ulong Offset, ulong Length)> Ranges()
    {
        ulong w = (ulong)Width / 8;
        yield return ("doorbell.peerSet", PeerSet, w);
        yield return ("doorbell.status", Status, w);
        if (Mask is ulong m)
        {
            yield return ("doorbell.mask", m, w);
        }

        yield return ("scratchpads.local", LocalScratchpads, 4UL * (ulong)ScratchpadCount);
        yield return ("scratchpads.peer", PeerScratchpads, 4UL * (ulong)ScratchpadCount);
    }
}

/// <summary>An NTB register block: the file that is the register BAR (sysfs resourceN, or a /dev/shm file standing in for it), where in it, and its layout.</summary>
public sealed record NtbRegisterFile(string Path, ulong Offset, NtbRegisterLayout Layout);
