namespace Vop.Appliance.Config;

/// <summary>The config file as written (JSON); unknown keys are refused. Validated into <see cref="ApplianceConfig"/>.</summary>
public sealed class VopConfigFile
{
    public List<LinkConfigFile>? Links { get; set; }
}

public sealed class LinkConfigFile
{
    public string? Name { get; set; }

    public string? Kind { get; set; }

    public string? Role { get; set; }

    public string? Socket { get; set; }

    public string? WindowSize { get; set; }

    public int? Vectors { get; set; }

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
}

/// <summary>A validated configuration.</summary>
public sealed record ApplianceConfig(string Path, IReadOnlyList<LinkConfig> Links);

public enum LinkRole
{
    Device,
    Driver,
}

public sealed record LinkConfig(string Name, string Kind, LinkRole Role, string Socket, ulong WindowSize, int Vectors, IReadOnlyList<NetConfigEntry> Devices);

public sealed record NetConfigEntry(string Name, string Tap, byte[] Mac, int Mtu, ushort QueueSize);
