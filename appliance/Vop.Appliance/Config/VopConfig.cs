namespace Vop.Appliance.Config;

/// <summary>The config file as written (JSON); unknown keys are refused. Validated into <see cref="ApplianceConfig"/>.</summary>
public sealed class VopConfigFile
{
    public List<LinkConfigFile>? Links { get; set; }

    public MetricsConfigFile? Metrics { get; set; }
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

    public List<DeviceConfigFile>? Devices { get; set; }
}

public sealed class DeviceConfigFile
{
    public string? Type { get; set; }

    public string? Name { get; set; }

    public string? Tap { get; set; }

    public string? Mac { get; set; }

    public int? Mtu { get; set; }

    public int? QueueSize { get; set; }

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
public sealed record ApplianceConfig(string Path, IReadOnlyList<LinkConfig> Links, string? MetricsListen = "127.0.0.1:9465");

public enum LinkRole
{
    Device,
    Driver,
}

public sealed record LinkConfig(string Name, string Kind, LinkRole Role, string Socket, ulong WindowSize, int Vectors, IReadOnlyList<DeviceEntry> Devices)
{
    /// <summary>Which physical end this daemon is on for this link (metrics direction: receive = card to host).</summary>
    public ConsoleEnd End { get; init; } = Role == LinkRole.Device ? ConsoleEnd.Host : ConsoleEnd.Card;

    /// <summary>Where the link's sockets live: RunDir/NAME/(capture|PORT).sock.</summary>
    public string RunDir { get; init; } = "/run/vop";

    /// <summary>pci/ntb: the file that is the window (sysfs resourceN, /dev/shm file, hugetlbfs) and where in it.</summary>
    public string? WindowPath { get; init; }

    public ulong WindowOffset { get; init; }

    /// <summary>pci/ntb: poll (window counters) or ivshmem (BAR0 Doorbell register + MSI-X through VFIO, inside a VM).</summary>
    public string Doorbell { get; init; } = "poll";

    /// <summary>vhost-user: vop connects to QEMU's socket (chardev server=on) instead of listening.</summary>
    public bool VhostUserConnect { get; init; }
}

/// <summary>A validated device of a link.</summary>
public abstract record DeviceEntry(string Name);

public sealed record NetConfigEntry(string Name, string Tap, byte[] Mac, int Mtu, ushort QueueSize) : DeviceEntry(Name);

/// <summary>Which physical end a console device sits on; independent of the device/driver role.</summary>
public enum ConsoleEnd
{
    Host,
    Card,
}

/// <summary>A console port: on the card end, what serves it (a command on a PTY, or a TCP endpoint).</summary>
public sealed record PortEntry(string Name, IReadOnlyList<string>? Command, string? Connect);

public sealed record ConsoleConfigEntry(string Name, ConsoleEnd End, IReadOnlyList<PortEntry> Ports, string RunDir) : DeviceEntry(Name);
