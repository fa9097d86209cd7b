using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Vop.Netstack.Tap;
using Vop.Netstack.Virtio;

namespace Vop.Appliance.Config;

/// <summary>
/// Reads and validates a config file. Every mistake becomes one <see cref="ConfigException"/> line naming the
/// file and the key path (links[0].devices[1].mac) and saying what would be right.
/// </summary>
public static partial class ConfigLoader
{
    public static ApplianceConfig Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"{path}: cannot read: {e.Message}");
        }

        return Parse(path, text);
    }

    public static ApplianceConfig Parse(string path, string text)
    {
        VopConfigFile? file;
        try
        {
            file = JsonSerializer.Deserialize(text, ConfigJson.Default.VopConfigFile);
        }
        catch (JsonException e)
        {
            throw new ConfigException($"{path}: {Describe(e)}");
        }

        if (file?.Links is not { Count: > 0 } links)
        {
            throw new ConfigException($"{path}: links: at least one link is required");
        }

        var result = new List<LinkConfig>();
        var taps = new HashSet<string>();
        var names = new HashSet<string>();
        var sockets = new HashSet<string>();
        for (int i = 0; i < links.Count; i++)
        {
            LinkConfig link = ValidateLink(path, $"links[{i}]", links[i]);
            if (!names.Add(link.Name))
            {
                throw new ConfigException($"{path}: links[{i}].name: '{link.Name}' is used by another link");
            }

            if (link.Socket.Length > 0 && !sockets.Add(link.Socket))
            {
                throw new ConfigException($"{path}: links[{i}].socket: '{link.Socket}' is used by another link");
            }

            for (int d = 0; d < link.Devices.Count; d++)
            {
                if (link.Devices[d] is NetConfigEntry net && !taps.Add(net.Tap))
                {
                    throw new ConfigException($"{path}: links[{i}].devices[{d}].tap: '{net.Tap}' is used by another device");
                }
            }

            result.Add(link);
        }

        string? listen = file.Metrics?.Listen ?? "127.0.0.1:9465";
        if (listen is "" or "off")
        {
            listen = null;
        }
        else if (!System.Net.IPEndPoint.TryParse(listen, out System.Net.IPEndPoint? ep) || ep.Port == 0)
        {
            throw new ConfigException($"{path}: metrics.listen: '{listen}' is not an address:port (or \"off\")");
        }

        return new ApplianceConfig(path, result, listen);
    }

    private static string Describe(JsonException e)
    {
        string where = e.Path is { Length: > 1 } p ? p.TrimStart('$', '.') : "(top level)";
        if (e.Message.Contains("could not be mapped", StringComparison.Ordinal))
        {
            Match m = UnknownKey().Match(e.Message);
            string key = m.Success ? m.Groups[1].Value : "?";
            string parent = where.EndsWith("." + key, StringComparison.Ordinal) ? where[..^(key.Length + 1)] : where;
            return $"{parent}: unknown key '{key}'";
        }

        if (e.Message.Contains("could not be converted", StringComparison.Ordinal))
        {
            return $"{where}: wrong type (line {e.LineNumber + 1})";
        }

        return $"not valid JSON at line {e.LineNumber + 1}: {e.Message.Split(" Path:")[0]}";
    }

    [GeneratedRegex("The JSON property '([^']*)'")]
    private static partial Regex UnknownKey();

    [GeneratedRegex("^/sys/bus/pci/devices/[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]/resource2$")]
    private static partial Regex IvshmemBar();

    [GeneratedRegex("^[a-z0-9][a-z0-9_-]{0,31}$")]
    private static partial Regex LinkName();

    /// <summary>
    /// vhost-user: vop is the device (back-end) of one net device for a QEMU front-end; the guest's memory
    /// is the window, so there is no window size, path or vector count to set.
    /// </summary>
    private static LinkConfig ValidateVhostUserLink(string path, string at, string name, LinkConfigFile l)
    {
        if ((l.Role ?? "device") != "device")
        {
            throw new ConfigException($"{path}: {at}.role: '{l.Role}': vop is always the device (back-end) on a vhost-user link");
        }

        string socket = Required(path, at + ".socket", l.Socket);
        if (!socket.StartsWith('/') || Encoding.UTF8.GetByteCount(socket) > 107)
        {
            throw new ConfigException($"{path}: {at}.socket: '{socket}' must be an absolute path of at most 107 bytes");
        }

        bool connect = (l.Mode ?? "listen") switch
        {
            "listen" => false,
            "connect" => true,
            string other => throw new ConfigException($"{path}: {at}.mode: '{other}' must be listen (QEMU connects) or connect (QEMU's chardev has server=on)"),
        };

        string? stray = l.WindowSize is not null ? "windowSize" : l.Vectors is not null ? "vectors" : l.Path is not null ? "path"
            : l.Offset is not null ? "offset" : l.Doorbell is not null ? "doorbell" : null;
        if (stray is not null)
        {
            throw new ConfigException($"{path}: {at}.{stray}: a vhost-user link has none (the guest's memory is the window, its eventfds the doorbells)");
        }

        if (l.Devices is not { Count: 1 } || l.Devices[0].Type is not (null or "net"))
        {
            throw new ConfigException($"{path}: {at}.devices: a vhost-user link serves exactly one net device");
        }

        if (l.Devices[0].Mac is not null)
        {
            throw new ConfigException($"{path}: {at}.devices[0].mac: the guest's MAC is QEMU's (-device virtio-net-pci,mac=...); a vhost-user device has none");
        }

        var device = (NetConfigEntry)ValidateDevice(path, at + ".devices[0]", l.Devices[0], LinkRole.Device);
        string runDir = l.RunDir ?? "/run/vop";
        if (!runDir.StartsWith('/'))
        {
            throw new ConfigException($"{path}: {at}.runDir: '{runDir}' must be an absolute path");
        }

        return new LinkConfig(name, "vhost-user", LinkRole.Device, socket, 0, 0, [device])
        {
            RunDir = runDir,
            VhostUserConnect = connect,
            End = l.End switch
            {
                null or "host" => ConsoleEnd.Host,
                "card" => ConsoleEnd.Card,
                string other => throw new ConfigException($"{path}: {at}.end: '{other}' must be host or card"),
            },
        };
    }

    private static LinkConfig ValidateLink(string path, string at, LinkConfigFile l)
    {
        string name = Required(path, at + ".name", l.Name);
        if (!LinkName().IsMatch(name))
        {
            throw new ConfigException($"{path}: {at}.name: '{name}' must be 1-32 of a-z 0-9 _ - (starting with a letter or digit)");
        }

        string kind = l.Kind ?? "loopback";
        if (kind is not ("loopback" or "pci" or "ntb" or "vhost-user"))
        {
            throw new ConfigException($"{path}: {at}.kind: '{kind}' is not a supported link kind (loopback, pci, ntb, vhost-user)");
        }

        if (kind == "vhost-user")
        {
            return ValidateVhostUserLink(path, at, name, l);
        }

        if (l.Mode is not null)
        {
            throw new ConfigException($"{path}: {at}.mode: only vhost-user links have a mode (listen or connect)");
        }

        bool mapped = kind != "loopback";

        LinkRole role = Required(path, at + ".role", l.Role) switch
        {
            "device" => LinkRole.Device,
            "driver" => LinkRole.Driver,
            string other => throw new ConfigException($"{path}: {at}.role: '{other}' must be device or driver"),
        };

        string socket = mapped ? l.Socket ?? string.Empty : Required(path, at + ".socket", l.Socket);
        if (mapped)
        {
            string windowFile = Required(path, at + ".path", l.Path);
            if (!windowFile.StartsWith('/'))
            {
                throw new ConfigException($"{path}: {at}.path: '{windowFile}' must be an absolute path (a BAR resource file, /dev/shm/..., hugetlbfs)");
            }

            if (l.Socket is not null)
            {
                throw new ConfigException($"{path}: {at}.socket: a {kind} link has no socket; the window is {at}.path");
            }

            if ((l.Doorbell ?? "poll") is not ("poll" or "ivshmem"))
            {
                throw new ConfigException($"{path}: {at}.doorbell: '{l.Doorbell}' must be poll or ivshmem");
            }

            if (l.Doorbell == "ivshmem" && !IvshmemBar().IsMatch(windowFile))
            {
                throw new ConfigException($"{path}: {at}.path: doorbell ivshmem maps an ivshmem BAR2: /sys/bus/pci/devices/DDDD:BB:DD.F/resource2, not '{windowFile}'");
            }

            if (l.Doorbell == "ivshmem" && l.Role != "driver")
            {
                throw new ConfigException($"{path}: {at}.role: with doorbell ivshmem the guest's end is the driver side (the host serves the ivshmem socket as a loopback link's device side)");
            }
        }
        else if (l.Path is not null || l.Offset is not null || l.Doorbell is not null)
        {
            throw new ConfigException($"{path}: {at}.path: only pci and ntb links map a window file");
        }
        else if (!socket.StartsWith('/') || Encoding.UTF8.GetByteCount(socket) > 107)
        {
            throw new ConfigException($"{path}: {at}.socket: '{socket}' must be an absolute path of at most 107 bytes");
        }

        int vectors = l.Vectors ?? 16;
        if (vectors is < 2 or > 64)
        {
            throw new ConfigException($"{path}: {at}.vectors: {vectors} must be 2..64");
        }

        var devices = new List<DeviceEntry>();
        var deviceNames = new HashSet<string>();
        if (l.Devices is not { Count: > 0 })
        {
            throw new ConfigException($"{path}: {at}.devices: at least one device is required");
        }

        if (l.Devices.Count > 8)
        {
            throw new ConfigException($"{path}: {at}.devices: at most 8 devices per link");
        }

        for (int d = 0; d < l.Devices.Count; d++)
        {
            DeviceEntry dev = l.Devices[d].Type == "console"
                ? ValidateConsole(path, $"{at}.devices[{d}]", l.Devices[d], name, l.RunDir ?? "/run/vop")
                : ValidateDevice(path, $"{at}.devices[{d}]", l.Devices[d], role);
            if (!deviceNames.Add(dev.Name))
            {
                throw new ConfigException($"{path}: {at}.devices[{d}].name: '{dev.Name}' is used by another device of this link");
            }

            devices.Add(dev);
        }

        int queues = devices.Sum(d => d is ConsoleConfigEntry c ? 2 + (2 * c.Ports.Count) : 2);
        if (role == LinkRole.Device && queues + 1 > vectors)
        {
            throw new ConfigException($"{path}: {at}.vectors: {vectors} is too few: the devices have {queues} queues and each needs its own vector, plus one for control");
        }

        ulong window = 0;
        if (role == LinkRole.Device || mapped)
        {
            window = ParseSize(path, at + ".windowSize", l.WindowSize ?? "64M");
            if (window < (1UL << 20) || window > (1UL << 30) || (window & (window - 1)) != 0)
            {
                throw new ConfigException($"{path}: {at}.windowSize: {l.WindowSize} must be a power of two from 1M to 1G (an ivshmem BAR is a power of two)");
            }

            ulong needed = 1UL << 20;
            foreach (NetConfigEntry dev in devices.OfType<NetConfigEntry>())
            {
                needed += 2UL * dev.QueueSize * BufferBytes(dev.Mtu);
            }

            if (window < needed)
            {
                throw new ConfigException($"{path}: {at}.windowSize: {l.WindowSize ?? "64M"} is too small for the devices' buffers: needs at least {needed >> 20}M (2 queues x queueSize x {BufferBytes(0) >> 10} KiB per net device)");
            }
        }
        else if (l.WindowSize is not null)
        {
            throw new ConfigException($"{path}: {at}.windowSize: the device side sizes the window; remove it from a driver-role link");
        }

        if (mapped && l.Offset is < 0)
        {
            throw new ConfigException($"{path}: {at}.offset: {l.Offset} must not be negative");
        }

        string runDir = l.RunDir ?? "/run/vop";
        if (!runDir.StartsWith('/'))
        {
            throw new ConfigException($"{path}: {at}.runDir: '{runDir}' must be an absolute path");
        }

        var link = new LinkConfig(name, kind, role, socket, window, vectors, devices)
        {
            RunDir = runDir,
            WindowPath = mapped ? l.Path : null,
            Doorbell = mapped ? l.Doorbell ?? "poll" : "eventfd",
            WindowOffset = (ulong)(l.Offset ?? 0),
        };
        return l.End switch
        {
            null => link,
            "host" => link with { End = ConsoleEnd.Host },
            "card" => link with { End = ConsoleEnd.Card },
            string other => throw new ConfigException($"{path}: {at}.end: '{other}' must be host or card"),
        };
    }

    /// <summary>Buffer bytes per descriptor the driver side will carve (64 KiB GSO buffers).</summary>
    private static ulong BufferBytes(int mtu) => (ulong)(VirtioNetHeader.Size + Math.Max(FrameSizes.MaxGsoFrame, mtu + 18) + 64);

    private static NetConfigEntry ValidateDevice(string path, string at, DeviceConfigFile d, LinkRole role)
    {
        string type = Required(path, at + ".type", d.Type);
        if (type != "net")
        {
            throw new ConfigException($"{path}: {at}.type: '{type}' is not a supported device type (net, console)");
        }

        if (d.End is not null || d.Ports is not null || d.RunDir is not null)
        {
            string key = d.End is not null ? "end" : d.Ports is not null ? "ports" : "runDir";
            throw new ConfigException($"{path}: {at}.{key}: only a console device has it");
        }

        string name = d.Name ?? "net0";
        string tap = Required(path, at + ".tap", d.Tap);
        try
        {
            TapDevice.ValidateName(tap);
        }
        catch (ArgumentException e)
        {
            throw new ConfigException($"{path}: {at}.tap: {e.Message}");
        }

        int mtu = d.Mtu ?? 1500;
        if (mtu is < 68 or > TapDevice.MaxMtu)
        {
            throw new ConfigException($"{path}: {at}.mtu: {mtu} must be 68..{TapDevice.MaxMtu} (a TAP's largest MTU is 65535 minus the 14-byte Ethernet header)");
        }

        int queueSize = d.QueueSize ?? 256;
        if (queueSize is < 16 or > 4096 || (queueSize & (queueSize - 1)) != 0)
        {
            throw new ConfigException($"{path}: {at}.queueSize: {queueSize} must be a power of two from 16 to 4096");
        }

        byte[] mac;
        if (role == LinkRole.Device)
        {
            mac = ParseMac(path, at + ".mac", d.Mac ?? "52:54:00:00:00:01");
        }
        else
        {
            if (d.Mac is not null || d.Mtu is not null || d.QueueSize is not null)
            {
                string key = d.Mac is not null ? "mac" : d.Mtu is not null ? "mtu" : "queueSize";
                throw new ConfigException($"{path}: {at}.{key}: set by the device side's config space; remove it from a driver-role device");
            }

            mac = new byte[6];
        }

        return new NetConfigEntry(name, tap, mac, mtu, (ushort)queueSize);
    }

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$")]
    private static partial Regex PortName();

    private static ConsoleConfigEntry ValidateConsole(string path, string at, DeviceConfigFile d, string link, string linkRunDir)
    {
        if (d.Tap is not null || d.Mac is not null || d.Mtu is not null || d.QueueSize is not null)
        {
            string key = d.Tap is not null ? "tap" : d.Mac is not null ? "mac" : d.Mtu is not null ? "mtu" : "queueSize";
            throw new ConfigException($"{path}: {at}.{key}: a console device has no {key}");
        }

        ConsoleEnd end = Required(path, at + ".end", d.End) switch
        {
            "host" => ConsoleEnd.Host,
            "card" => ConsoleEnd.Card,
            string other => throw new ConfigException($"{path}: {at}.end: '{other}' must be host or card"),
        };

        List<PortConfigFile> files = d.Ports ?? [new() { Name = "console" }, new() { Name = "ssh" }];
        if (files.Count is 0 or > 7)
        {
            throw new ConfigException($"{path}: {at}.ports: a console device has 1 to 7 ports");
        }

        var ports = new List<PortEntry>();
        for (int i = 0; i < files.Count; i++)
        {
            string pat = $"{at}.ports[{i}]";
            string name = Required(path, pat + ".name", files[i].Name);
            if (!PortName().IsMatch(name))
            {
                throw new ConfigException($"{path}: {pat}.name: '{name}' must be 1-64 of letters, digits, . _ -");
            }

            if (ports.Any(p => p.Name == name))
            {
                throw new ConfigException($"{path}: {pat}.name: '{name}' is used by another port");
            }

            if (files[i].Command is { Count: 0 })
            {
                throw new ConfigException($"{path}: {pat}.command: must name a program");
            }

            if (files[i].Command is not null && files[i].Connect is not null)
            {
                throw new ConfigException($"{path}: {pat}: command and connect are alternatives; give one");
            }

            if (files[i].Connect is string c && !System.Net.IPEndPoint.TryParse(c, out _))
            {
                throw new ConfigException($"{path}: {pat}.connect: '{c}' is not an address:port");
            }

            ports.Add(new PortEntry(name, files[i].Command, files[i].Connect));
        }

        string runDir = d.RunDir ?? linkRunDir;
        if (!runDir.StartsWith('/'))
        {
            throw new ConfigException($"{path}: {at}.runDir: '{runDir}' must be an absolute path");
        }

        if (Encoding.UTF8.GetByteCount(Path.Combine(runDir, link, "x.sock")) + ports.Max(p => p.Name.Length) > 107)
        {
            throw new ConfigException($"{path}: {at}.runDir: '{runDir}' makes socket paths longer than 107 bytes");
        }

        return new ConsoleConfigEntry(d.Name ?? "console0", end, ports, runDir);
    }

    private static string Required(string path, string at, string? value) =>
        string.IsNullOrWhiteSpace(value) ? throw new ConfigException($"{path}: {at}: required") : value;

    /// <summary>"64M", "1G", "65536", "512K".</summary>
    public static ulong ParseSize(string path, string at, string text)
    {
        string t = text.Trim();
        ulong unit = 1;
        if (t.Length > 0 && char.ToUpperInvariant(t[^1]) is 'K' or 'M' or 'G')
        {
            unit = char.ToUpperInvariant(t[^1]) switch { 'K' => 1UL << 10, 'M' => 1UL << 20, _ => 1UL << 30 };
            t = t[..^1];
        }

        if (!ulong.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) || n > (1UL << 40) / unit)
        {
            throw new ConfigException($"{path}: {at}: '{text}' is not a size (like 64M, 1G or 65536)");
        }

        return n * unit;
    }

    public static byte[] ParseMac(string path, string at, string text)
    {
        string[] parts = text.Split(':');
        var mac = new byte[6];
        bool ok = parts.Length == 6;
        for (int i = 0; ok && i < 6; i++)
        {
            ok = parts[i].Length == 2 && byte.TryParse(parts[i], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out mac[i]);
        }

        if (!ok)
        {
            throw new ConfigException($"{path}: {at}: '{text}' is not a MAC address (six hex bytes like 52:54:00:12:34:56)");
        }

        if ((mac[0] & 1) != 0 || mac.All(b => b == 0))
        {
            throw new ConfigException($"{path}: {at}: '{text}' is a multicast or zero address; a NIC needs a unicast one");
        }

        return mac;
    }
}
