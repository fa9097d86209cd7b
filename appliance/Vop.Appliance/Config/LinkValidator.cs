using System.Text.RegularExpressions;

namespace Vop.Appliance.Config;

/// <summary>
/// One link of the config file: its name and kind, then the rules of a window link (loopback: a socket;
/// pci/ntb: a window file and its doorbell) or of a vhost-user link (<see cref="VhostUserLinkValidator"/>),
/// its devices and vectors, the window size (<see cref="WindowSizing"/>) and where its sockets live.
/// </summary>
internal static partial class LinkValidator
{
    public const int DefaultVectors = 16;
    public const int MaxDevices = 8;

    public static LinkConfig Validate(ConfigKey at, LinkConfigFile l, string daemonRunDir)
    {
        string name = at["name"].Required(l.Name);
        if (!LinkName().IsMatch(name))
        {
            throw at["name"].Error($"'{name}' must be 1-32 of a-z 0-9 _ - (starting with a letter or digit)");
        }

        LinkKind kind = l.Kind is null ? LinkKind.Loopback
            : ConfigNames.LinkKinds.Parse(at["kind"], l.Kind, $"is not a supported link kind ({ConfigNames.LinkKinds.List})");
        NtbRegistersValidator.OnlyNtb(at, kind, l);
        if (kind == LinkKind.VhostUser)
        {
            return VhostUserLinkValidator.Validate(at, name, l, daemonRunDir);
        }

        if (l.Mode is not null)
        {
            throw at["mode"].Error("only vhost-user links have a mode (listen or connect)");
        }

        LinkRole role = ConfigNames.Roles.Parse(at["role"], at["role"].Required(l.Role), "must be device or driver");
        bool mapped = kind.MapsWindowFile();
        string socket;
        DoorbellKind doorbell;
        if (mapped)
        {
            socket = string.Empty;
            doorbell = WindowFile(at, kind, role, l);
        }
        else
        {
            socket = at["socket"].Required(l.Socket);
            if (l.Path is not null || l.Offset is not null || l.Doorbell is not null)
            {
                throw at["path"].Error("only pci and ntb links map a window file");
            }

            socket = PathRules.Socket(at["socket"], socket);
            doorbell = DoorbellKind.EventFd;
        }

        int vectors = l.Vectors ?? DefaultVectors;
        if (vectors is < 2 or > 64)
        {
            throw at["vectors"].Error($"{vectors} must be 2..64");
        }

        string runDir = PathRules.RunDir(at["runDir"], l.RunDir ?? daemonRunDir);
        IReadOnlyList<DeviceEntry> devices = Devices(at, l, name, role, runDir);
        int queues = devices.Sum(d => d switch
        {
            ConsoleConfigEntry c => 2 + (2 * c.Ports.Count),
            NetDeviceEntry { Options.QueuePairs: > 1 } n => (2 * n.Options.QueuePairs) + 1, // + the control queue
            _ => 2,
        });
        if (role == LinkRole.Device && queues + 1 > vectors)
        {
            throw at["vectors"].Error($"{vectors} is too few: the devices have {queues} queues and each needs its own vector, plus one for control");
        }

        ulong window = 0;
        if (role == LinkRole.Device || mapped)
        {
            window = WindowSizing.Validate(at["windowSize"], l.WindowSize, devices.OfType<NetDeviceEntry>().Select(n => n.Options));
        }
        else if (l.WindowSize is not null)
        {
            throw at["windowSize"].Error("the device side sizes the window; remove it from a driver-role link");
        }

        if (mapped && l.Offset is < 0)
        {
            throw at["offset"].Error($"{l.Offset} must not be negative");
        }

        Vop.Links.Pci.NtbRegisterFile? registers = null;
        if (mapped)
        {
            (doorbell, registers) = NtbRegistersValidator.Validate(at, l, doorbell, l.Path!, (ulong)(l.Offset ?? 0), window);
        }

        var link = new LinkConfig(name, kind, role, socket, window, vectors, devices)
        {
            RunDir = runDir,
            WindowPath = mapped ? l.Path : null,
            Doorbell = doorbell,
            Registers = registers,
            WindowOffset = (ulong)(l.Offset ?? 0),
            Pumps = PumpSettingsValidator.Validate(at, l),
        };
        return WithEnd(at, l, link);
    }

    /// <summary>The link's physical end when the file names it; else the default from its role.</summary>
    public static LinkConfig WithEnd(ConfigKey at, LinkConfigFile l, LinkConfig link) =>
        l.End is null ? link : link with { End = ConfigNames.Ends.Parse(at["end"], l.End, "must be host or card") };

    /// <summary>
    /// pci/ntb: the window is a file (a BAR resource file, /dev/shm/..., hugetlbfs); doorbells poll window
    /// counters or use an ivshmem BAR. With the ivshmem BAR either role is fine: the driver side when the
    /// host's loopback link serves the socket, either when the peer is another guest (`vop ivshmem-server`).
    /// </summary>
    private static DoorbellKind WindowFile(ConfigKey at, LinkKind kind, LinkRole role, LinkConfigFile l)
    {
        string windowFile = at["path"].Required(l.Path);
        if (!windowFile.StartsWith('/'))
        {
            throw at["path"].Error($"'{windowFile}' must be an absolute path (a BAR resource file, /dev/shm/..., hugetlbfs)");
        }

        if (l.Socket is not null)
        {
            throw at["socket"].Error($"a {kind.Name()} link has no socket; the window is {at["path"].Path}");
        }

        DoorbellKind doorbell = l.Doorbell is null ? DoorbellKind.Poll
            : ConfigNames.Doorbells.TryParse(l.Doorbell, out DoorbellKind d) && d != DoorbellKind.EventFd ? d
            : throw at["doorbell"].Error($"'{l.Doorbell}' must be poll or ivshmem (or registers, on an ntb link with a register block)");
        if (doorbell == DoorbellKind.Ivshmem && !IvshmemBar().IsMatch(windowFile))
        {
            throw at["path"].Error($"doorbell ivshmem maps an ivshmem BAR2: /sys/bus/pci/devices/DDDD:BB:DD.F/resource2, not '{windowFile}'");
        }

        return doorbell;
    }

    private static List<DeviceEntry> Devices(ConfigKey at, LinkConfigFile l, string link, LinkRole role, string runDir)
    {
        if (l.Devices is not { Count: > 0 })
        {
            throw at["devices"].Error("at least one device is required");
        }

        if (l.Devices.Count > MaxDevices)
        {
            throw at["devices"].Error($"at most {MaxDevices} devices per link");
        }

        var devices = new List<DeviceEntry>();
        var names = new HashSet<string>();
        for (int d = 0; d < l.Devices.Count; d++)
        {
            ConfigKey dat = at["devices"][d];
            DeviceEntry dev = l.Devices[d].Type == "console"
                ? ConsoleDeviceValidator.Validate(dat, l.Devices[d], link, runDir)
                : new NetDeviceEntry(NetDeviceValidator.Validate(dat, l.Devices[d], role));
            if (!names.Add(dev.Name))
            {
                throw dat["name"].Error($"'{dev.Name}' is used by another device of this link");
            }

            devices.Add(dev);
        }

        return devices;
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9_-]{0,31}$")]
    private static partial Regex LinkName();

    [GeneratedRegex("^/sys/bus/pci/devices/[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]/resource2$")]
    private static partial Regex IvshmemBar();
}
