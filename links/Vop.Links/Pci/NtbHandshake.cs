namespace Vop.Links.Pci;

/// <summary>What one side says about itself in the peer's scratchpads (docs/wire-format.md, "NTB scratchpads").</summary>
public readonly record struct NtbIdentity(bool DeviceSide, int Vectors, int DoorbellBits, ulong WindowSize, uint Epoch);

/// <summary>How the peer's scratchpads read: not written yet, the peer this side expects, or something else (with why).</summary>
public enum NtbPeerState
{
    NotYet,
    Matches,
    Mismatch,

    /// <summary>All fields match but the epoch differs from the peer's state block: normal for a moment while the peer (re)starts, a refusal when it lasts.</summary>
    EpochDiffers,
}

/// <summary>
/// vop's scratchpad handshake on an NTB. Each side writes four 32-bit scratchpads of its peer
/// (ntb_peer_spad_write) and reads the four the peer wrote into its own (ntb_spad_read):
/// 0 magic 0x4E504F56 ("VOPN"; written 0 first and last), 1 version | role &lt;&lt; 8 | vectors &lt;&lt; 16 |
/// doorbell bits &lt;&lt; 24, 2 window size in KiB, 3 the side's epoch (as in its state block in the window).
/// The values are a hostile peer's input: they are only compared, never used as a size, offset or index,
/// and a mismatch is a refusal, not an exception. The epoch ties the register block to the window: a peer
/// whose scratchpad epoch differs from its state block's epoch writes to this register block but runs in
/// another window (or the other way round), so neither is trusted.
/// </summary>
public static class NtbHandshake
{
    public const uint Magic = 0x4E504F56;
    public const uint Version = 1;

    /// <summary>Scratchpads the handshake uses (the first ones of the block).</summary>
    public const int Scratchpads = 4;

    private const uint RoleDevice = 1;
    private const uint RoleDriver = 2;

    /// <summary>Writes <paramref name="me"/> into the peer's scratchpads: magic 0 first, the fields, the magic last.</summary>
    public static void Publish(NtbRegisters registers, in NtbIdentity me)
    {
        registers.WritePeerScratchpad(0, 0);
        registers.WritePeerScratchpad(1, Word1(me.DeviceSide, me.Vectors, me.DoorbellBits));
        registers.WritePeerScratchpad(2, (uint)Math.Min(me.WindowSize >> 10, uint.MaxValue));
        registers.WritePeerScratchpad(3, me.Epoch);
        registers.WritePeerScratchpad(0, Magic);
    }

    /// <summary>The four scratchpads the peer wrote into ours, each read once.</summary>
    public static (uint Magic, uint Word1, uint WindowKiB, uint Epoch) Read(NtbRegisters registers) =>
        (registers.ReadLocalScratchpad(0), registers.ReadLocalScratchpad(1), registers.ReadLocalScratchpad(2), registers.ReadLocalScratchpad(3));

    /// <summary>
    /// Checks what the peer wrote (<paramref name="spads"/>) against what this side (<paramref name="me"/>)
    /// expects of its peer, and the scratchpad epoch against <paramref name="peerWindowEpoch"/>, the epoch in
    /// the peer's state block in the window. Returns the state and, on a mismatch, one line saying why.
    /// </summary>
    public static NtbPeerState Check((uint Magic, uint Word1, uint WindowKiB, uint Epoch) spads, in NtbIdentity me, uint peerWindowEpoch, out string? problem)
    {
        problem = null;
        if (spads.Magic == 0)
        {
            return NtbPeerState.NotYet;
        }

        uint version = spads.Word1 & 0xFF;
        uint role = (spads.Word1 >> 8) & 0xFF;
        uint vectors = (spads.Word1 >> 16) & 0xFF;
        uint bits = spads.Word1 >> 24;
        uint windowKiB = (uint)Math.Min(me.WindowSize >> 10, uint.MaxValue);
        uint peerRole = me.DeviceSide ? RoleDriver : RoleDevice;
        problem =
            spads.Magic != Magic ? $"scratchpad 0 reads 0x{spads.Magic:x8}, not vop's magic 0x{Magic:x8}: these registers are not a vop peer's"
            : version != Version ? $"scratchpad 1 says handshake version {version}; this vop speaks {Version}"
            : role != peerRole ? $"scratchpad 1 says the peer is {RoleName(role)}; this end is the {(me.DeviceSide ? "device" : "driver")} side, so the peer must be the {RoleName(peerRole)}"
            : vectors != (uint)me.Vectors ? $"scratchpad 1 says the peer has {vectors} vectors; this end has {me.Vectors} (both ends need the same vectors)"
            : bits != (uint)me.DoorbellBits ? $"scratchpad 1 says the peer uses {bits} doorbell bits; this end uses {me.DoorbellBits} (both ends need the same registers.doorbell.bits)"
            : spads.WindowKiB != windowKiB ? $"scratchpad 2 says the peer's window is {spads.WindowKiB} KiB; this end's is {windowKiB} KiB"
            : null;
        if (problem is not null)
        {
            return NtbPeerState.Mismatch;
        }

        if (spads.Epoch != peerWindowEpoch)
        {
            problem = $"scratchpad 3 says epoch 0x{spads.Epoch:x8} but the peer's state block in the window says 0x{peerWindowEpoch:x8}: the registers and the window are not the same NTB's";
            return NtbPeerState.EpochDiffers;
        }

        return NtbPeerState.Matches;
    }

    private static uint Word1(bool deviceSide, int vectors, int bits) =>
        Version | ((deviceSide ? RoleDevice : RoleDriver) << 8) | ((uint)vectors << 16) | ((uint)bits << 24);

    private static string RoleName(uint role) => role switch
    {
        RoleDevice => "device side",
        RoleDriver => "driver side",
        _ => $"role {role}",
    };
}
