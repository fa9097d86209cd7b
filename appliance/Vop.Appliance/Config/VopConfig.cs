using Vop.Netstack;

namespace Vop.Appliance.Config;

/// <summary>The config file as written (JSON); unknown keys are refused. Validated into <see cref="ApplianceConfig"/>.</summary>
public sealed class VopConfigFile
{
    public List<LinkConfigFile>? Links { get; set; }

    public MetricsConfigFile? Metrics { get; set; }

    public string? RunDir { get; set; }
}

public sealed class MetricsConfigFile
{
    public string? Listen { get; set; }
}

public sealed class LinkConfigFile
{
    public string? Name { get; set; }

    public string? Kind { get; set; }

    public string? Role { get; set; }

    public string? Socket { get; set; }

    public string? WindowSize { get; set; }

    public int? Vectors { get; set; }

    public string? End { get; set; }

    public string? RunDir { get; set; }

    public string? Path { get; set; }

    public long? Offset { get; set; }

    public string? Doorbell { get; set; }

    public string? Mode { get; set; }

    public RegistersConfigFile? Registers { get; set; }

    public string? Poll { get; set; }

    public string? Cpus { get; set; }

    public List<DeviceConfigFile>? Devices { get; set; }
}

/// <summary>ntb: the NTB's register BAR (docs/operations.md, "An NTB pair").</summary>
public sealed class RegistersConfigFile
{
    public string? Path { get; set; }

    public long? Offset { get; set; }

    public bool? Emulated { get; set; }

    public DoorbellRegistersConfigFile? Doorbell { get; set; }

    public ScratchpadsConfigFile? Scratchpads { get; set; }
}

public sealed class DoorbellRegistersConfigFile
{
    public long? PeerSet { get; set; }

    public long? Status { get; set; }

    public long? Mask { get; set; }

    public int? Width { get; set; }

    public int? Bits { get; set; }
}

public sealed class ScratchpadsConfigFile
{
    public long? Local { get; set; }

    public long? Peer { get; set; }

    public int? Count { get; set; }
}

public sealed class DeviceConfigFile
{
    public string? Type { get; set; }

    public string? Name { get; set; }

    public string? Tap { get; set; }

    public string? Mac { get; set; }

    public int? Mtu { get; set; }

    public int? QueueSize { get; set; }

    public int? QueuePairs { get; set; }

    /// <summary>Net: "tap" (default) or "tun", either role.</summary>
    public string? Mode { get; set; }

    public string? Datapath { get; set; }

    public string? End { get; set; }

    public List<PortConfigFile>? Ports { get; set; }

    public string? RunDir { get; set; }
}

public sealed class PortConfigFile
{
    public string? Name { get; set; }

    public List<string>? Command { get; set; }

    public string? Connect { get; set; }
}

/// <summary>A validated configuration.</summary>
public sealed record ApplianceConfig(string Path, IReadOnlyList<LinkConfig> Links, string? MetricsListen = "127.0.0.1:9465")
{
    /// <summary>The daemon's run directory: its control socket (RunDir/control/NAME.sock) and, unless a link says otherwise, its links' sockets.</summary>
    public string RunDir { get; init; } = "/run/vop";

    /// <summary>The daemon's name: the config file's name without .json (vop@host reads host.json).</summary>
    public string Name => System.IO.Path.GetFileNameWithoutExtension(Path);
}

public enum LinkRole
{
    Device,
    Driver,
}

/// <summary>How the two ends share memory (spelled as in <see cref="ConfigNames.LinkKinds"/>).</summary>
public enum LinkKind
{
    /// <summary>A memfd window and eventfds passed over an ivshmem-protocol unix socket (one machine, or a VM over ivshmem).</summary>
    Loopback,

    /// <summary>A window file both ends map: a PCI BAR resource file, /dev/shm, hugetlbfs.</summary>
    Pci,

    /// <summary>As <see cref="Pci"/>, across a non-transparent bridge.</summary>
    Ntb,

    /// <summary>vop as back-end of one net device for a QEMU front-end; the guest's memory is the window.</summary>
    VhostUser,
}

/// <summary>How a side wakes the other (spelled as in <see cref="ConfigNames.Doorbells"/>).</summary>
public enum DoorbellKind
{
    /// <summary>Loopback and vhost-user: eventfds.</summary>
    EventFd,

    /// <summary>pci/ntb: counters in the window and an adaptive poller.</summary>
    Poll,

    /// <summary>pci/ntb inside a VM: an ivshmem BAR0 Doorbell register and MSI-X through VFIO.</summary>
    Ivshmem,

    /// <summary>ntb: the NTB's doorbell registers (peer set, status polled) and scratchpads, from <see cref="LinkConfig.Registers"/>.</summary>
    Registers,
}

public static class LinkKindRules
{
    /// <summary>pci and ntb map a window file; loopback gets its window over the socket, vhost-user from the guest.</summary>
    public static bool MapsWindowFile(this LinkKind kind) => kind is LinkKind.Pci or LinkKind.Ntb;
}

public sealed record LinkConfig(string Name, LinkKind Kind, LinkRole Role, string Socket, ulong WindowSize, int Vectors, IReadOnlyList<DeviceEntry> Devices)
{
    /// <summary>Which physical end this daemon is on for this link (metrics direction: receive = card to host).</summary>
    public ConsoleEnd End { get; init; } = Role == LinkRole.Device ? ConsoleEnd.Host : ConsoleEnd.Card;

    /// <summary>Where the link's sockets live: RunDir/NAME/(capture|PORT).sock.</summary>
    public string RunDir { get; init; } = "/run/vop";

    /// <summary>pci/ntb: the file that is the window (sysfs resourceN, /dev/shm file, hugetlbfs) and where in it.</summary>
    public string? WindowPath { get; init; }

    public ulong WindowOffset { get; init; }

    /// <summary>pci/ntb: poll (window counters) or ivshmem (BAR0 Doorbell register + MSI-X through VFIO, inside a VM); else eventfd.</summary>
    public DoorbellKind Doorbell { get; init; } = DoorbellKind.EventFd;

    /// <summary>ntb with doorbell registers: the register BAR file, where in it, and the registers' offsets.</summary>
    public Vop.Links.Pci.NtbRegisterFile? Registers { get; init; }

    /// <summary>vhost-user: vop connects to QEMU's socket (chardev server=on) instead of listening.</summary>
    public bool VhostUserConnect { get; init; }

    /// <summary>How the link's net pumps wait for work and which CPUs they run on (keys poll and cpus).</summary>
    public Vop.Links.Devices.PumpSettings Pumps { get; init; } = Vop.Links.Devices.PumpSettings.Default;

    /// <summary>
    /// The link's entry as written (canonical JSON of its keys): a reload keeps a link whose entry did not
    /// change running untouched, and restarts one whose entry did.
    /// </summary>
    public string Source { get; init; } = string.Empty;
}

/// <summary>A validated device of a link.</summary>
public abstract record DeviceEntry(string Name);

/// <summary>A net device of a link: the options its backend runs with, as they are (no copy).</summary>
public sealed record NetDeviceEntry(NetDeviceOptions Options) : DeviceEntry(Options.Name);

/// <summary>Which physical end a console device sits on; independent of the device/driver role.</summary>
public enum ConsoleEnd
{
    Host,
    Card,
}

/// <summary>A console port: on the card end, what serves it (a command on a PTY, or a TCP endpoint).</summary>
public sealed record PortEntry(string Name, IReadOnlyList<string>? Command, string? Connect);

public sealed record ConsoleConfigEntry(string Name, ConsoleEnd End, IReadOnlyList<PortEntry> Ports, string RunDir) : DeviceEntry(Name);
