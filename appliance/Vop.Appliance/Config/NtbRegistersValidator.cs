using Vop.Links.Pci;

namespace Vop.Appliance.Config;

/// <summary>
/// An ntb link's <c>registers</c>: the NTB's register BAR (a sysfs resourceN, or a file standing in for it),
/// its doorbell registers (peerSet, status, mask; width and bits) and scratchpads (local, peer, count).
/// Only <c>kind: ntb</c> takes it; with it the doorbell is <c>registers</c>.
/// </summary>
internal static class NtbRegistersValidator
{
    /// <summary>Register offsets stay below 16 MiB: a register BAR is small (Intel's is 64 KiB, Switchtec's 32 MiB GAS region maps what vop needs below that).</summary>
    private const long MaxOffset = 0xFFFFFF;

    /// <summary>Refuses <c>registers</c> on any kind but ntb (called for every link, before the kind's own rules).</summary>
    public static void OnlyNtb(ConfigKey at, LinkKind kind, LinkConfigFile l)
    {
        if (l.Registers is not null && kind != LinkKind.Ntb)
        {
            throw at["registers"].Error($"only ntb links have a register block (doorbell and scratchpad registers); this link is {kind.Name()}");
        }

        if (kind != LinkKind.Ntb && ConfigNames.Doorbells.TryParse(l.Doorbell, out DoorbellKind d) && d == DoorbellKind.Registers)
        {
            throw at["doorbell"].Error($"registers: only ntb links ring NTB doorbell registers; this link is {kind.Name()}");
        }
    }

    /// <summary>The doorbell kind and register block of a pci/ntb link, given its <c>doorbell</c> as <see cref="LinkValidator"/> parsed it.</summary>
    public static (DoorbellKind Doorbell, NtbRegisterFile? Registers) Validate(ConfigKey at, LinkConfigFile l, DoorbellKind doorbell, string windowPath, ulong windowOffset, ulong windowSize)
    {
        RegistersConfigFile? r = l.Registers;
        if (r is null)
        {
            return doorbell == DoorbellKind.Registers
                ? throw at["registers"].Error("required with doorbell registers: the NTB's register BAR (path, doorbell, scratchpads)")
                : (doorbell, null);
        }

        if (l.Doorbell is not null && doorbell != DoorbellKind.Registers)
        {
            throw at["doorbell"].Error($"'{l.Doorbell}': a link with registers rings the NTB's doorbell registers; write \"registers\" or leave doorbell out");
        }

        ConfigKey rat = at["registers"];
        string path = rat["path"].Required(r.Path);
        if (!path.StartsWith('/'))
        {
            throw rat["path"].Error($"'{path}' must be an absolute path (the NTB's register BAR: /sys/bus/pci/devices/DDDD:BB:DD.F/resourceN, or a file standing in for it)");
        }

        long offset = r.Offset ?? 0;
        if (offset < 0)
        {
            throw rat["offset"].Error($"{offset} must not be negative");
        }

        ConfigKey dat = rat["doorbell"];
        DoorbellRegistersConfigFile d = r.Doorbell ?? throw dat.Error("required: { \"peerSet\": OFFSET, \"status\": OFFSET } (the peer doorbell set register and this side's doorbell status register)");
        int width = d.Width ?? 32;
        if (width is not (16 or 32 or 64))
        {
            throw dat["width"].Error($"{width} must be 16, 32 or 64 (the doorbell registers' width in bits)");
        }

        int bits = d.Bits ?? width;
        if (bits < 1 || bits > width)
        {
            throw dat["bits"].Error($"{bits} must be 1..{width} (how many doorbell bits of the {width}-bit registers vop may use)");
        }

        ulong peerSet = Offset(dat["peerSet"], d.PeerSet, width / 8);
        ulong status = Offset(dat["status"], d.Status, width / 8);
        ulong? mask = d.Mask is null ? null : Offset(dat["mask"], d.Mask, width / 8);

        ConfigKey sat = rat["scratchpads"];
        ScratchpadsConfigFile s = r.Scratchpads ?? throw sat.Error("required: { \"local\": OFFSET, \"peer\": OFFSET, \"count\": N } (vop's handshake uses 4 scratchpads)");
        ulong local = Offset(sat["local"], s.Local, 4);
        ulong peer = Offset(sat["peer"], s.Peer, 4);
        int count = s.Count ?? throw sat["count"].Error("required: how many scratchpads the NTB has (at least 4)");
        if (count is < NtbHandshake.Scratchpads or > 256)
        {
            throw sat["count"].Error($"{count} must be {NtbHandshake.Scratchpads}..256 (vop's handshake uses the first {NtbHandshake.Scratchpads})");
        }

        var layout = new NtbRegisterLayout(peerSet, status, mask, width, bits, local, peer, count, r.Emulated ?? false);
        var ranges = layout.Ranges().ToList();
        for (int i = 1; i < ranges.Count; i++)
        {
            for (int j = 0; j < i; j++)
            {
                if (Overlap(ranges[i].Offset, ranges[i].Length, ranges[j].Offset, ranges[j].Length))
                {
                    throw rat[ranges[i].Name.Split('.')[0]][ranges[i].Name.Split('.')[1]].Error($"overlaps registers.{ranges[j].Name} (0x{ranges[j].Offset:x}, {ranges[j].Length} bytes)");
                }
            }
        }

        if (path == windowPath && Overlap((ulong)offset, layout.Extent, windowOffset, windowSize))
        {
            throw rat["offset"].Error($"the registers (0x{offset:x}..0x{(ulong)offset + layout.Extent:x}) overlap the window (0x{windowOffset:x}, {windowSize} bytes) in {path}");
        }

        return (DoorbellKind.Registers, new NtbRegisterFile(path, (ulong)offset, layout));
    }

    private static ulong Offset(ConfigKey at, long? value, int align)
    {
        long v = value ?? throw at.Error("required: a byte offset in the register block");
        if (v is < 0 or > MaxOffset)
        {
            throw at.Error($"{v} must be 0..{MaxOffset} (0x{MaxOffset:x})");
        }

        return v % align == 0 ? (ulong)v : throw at.Error($"{v} (0x{v:x}) must be a multiple of {align} (the register's width in bytes)");
    }

    private static bool Overlap(ulong a, ulong alen, ulong b, ulong blen) => a <= b ? b - a < alen : a - b < blen;
}
