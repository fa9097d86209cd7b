using System.Text;
using System.Text.RegularExpressions;

namespace Vop.Appliance.Config;

/// <summary>
/// A console device of a link: which physical end it sits on, its ports (on the card end: a command on a PTY
/// or a TCP endpoint behind each) and where their sockets live.
/// </summary>
internal static partial class ConsoleDeviceValidator
{
    public const int MaxPorts = 7;

    public static ConsoleConfigEntry Validate(ConfigKey at, DeviceConfigFile d, string link, string linkRunDir)
    {
        if (d.Tap is not null || d.Mac is not null || d.Mtu is not null || d.QueueSize is not null || d.QueuePairs is not null || d.Mode is not null || d.Datapath is not null)
        {
            string key = d.Tap is not null ? "tap" : d.Mac is not null ? "mac" : d.Mtu is not null ? "mtu" : d.QueueSize is not null ? "queueSize" : d.QueuePairs is not null ? "queuePairs" : d.Mode is not null ? "mode" : "datapath";
            throw at[key].Error($"a console device has no {key}");
        }

        ConsoleEnd end = ConfigNames.Ends.Parse(at["end"], at["end"].Required(d.End), "must be host or card");
        List<PortConfigFile> files = d.Ports ?? [new() { Name = "console" }, new() { Name = "ssh" }];
        if (files.Count is 0 or > MaxPorts)
        {
            throw at["ports"].Error($"a console device has 1 to {MaxPorts} ports");
        }

        var ports = new List<PortEntry>();
        for (int i = 0; i < files.Count; i++)
        {
            ports.Add(Port(at["ports"][i], files[i], ports));
        }

        string runDir = PathRules.RunDir(at["runDir"], d.RunDir ?? linkRunDir);
        if (Encoding.UTF8.GetByteCount(Path.Combine(runDir, link, "x.sock")) + ports.Max(p => p.Name.Length) > PathRules.MaxSocketPathBytes)
        {
            throw at["runDir"].Error($"'{runDir}' makes socket paths longer than {PathRules.MaxSocketPathBytes} bytes");
        }

        return new ConsoleConfigEntry(d.Name ?? "console0", end, ports, runDir);
    }

    private static PortEntry Port(ConfigKey at, PortConfigFile file, List<PortEntry> earlier)
    {
        string name = at["name"].Required(file.Name);
        if (!PortName().IsMatch(name))
        {
            throw at["name"].Error($"'{name}' must be 1-64 of letters, digits, . _ -");
        }

        if (earlier.Any(p => p.Name == name))
        {
            throw at["name"].Error($"'{name}' is used by another port");
        }

        if (file.Command is { Count: 0 })
        {
            throw at["command"].Error("must name a program");
        }

        if (file.Command is not null && file.Connect is not null)
        {
            throw at.Error("command and connect are alternatives; give one");
        }

        if (file.Connect is string c && !System.Net.IPEndPoint.TryParse(c, out _))
        {
            throw at["connect"].Error($"'{c}' is not an address:port");
        }

        return new PortEntry(name, file.Command, file.Connect);
    }

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$")]
    private static partial Regex PortName();
}
