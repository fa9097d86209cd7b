using Vop.Appliance.Config;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>Each class of config mistake gets one line naming the file and the key, and a non-zero exit.</summary>
public sealed class ConfigTests : IDisposable
{
    private const string Good = """
        {
          // comments are allowed
          "links": [
            { "name": "card0", "kind": "loopback", "role": "device", "socket": "/run/vop/card0.sock", "windowSize": "64M",
              "devices": [ { "type": "net", "name": "net0", "tap": "vop-card0", "mac": "52:54:00:12:34:56", "mtu": 1500 } ] }
          ]
        }
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("vop-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void GoodConfigParses()
    {
        ApplianceConfig c = ConfigLoader.Parse("vop.json", Good);
        LinkConfig l = Assert.Single(c.Links);
        Assert.Equal(LinkRole.Device, l.Role);
        Assert.Equal(64UL << 20, l.WindowSize);
        Assert.Equal(new byte[] { 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, Assert.IsType<NetDeviceEntry>(l.Devices[0]).Options.Mac);
        Assert.Equal(16, l.Vectors);
        Assert.Equal(Vop.Netstack.NetMode.Tap, Assert.IsType<NetDeviceEntry>(l.Devices[0]).Options.Mode);
        NetDeviceEntry tun = Assert.IsType<NetDeviceEntry>(Assert.Single(ConfigLoader.Parse("vop.json", Good.Replace("\"mtu\": 1500", "\"mtu\": 1500, \"mode\": \"tun\"", StringComparison.Ordinal)).Links).Devices[0]);
        Assert.Equal(Vop.Netstack.NetMode.Tun, tun.Options.Mode);

        // Comments are allowed deliberately (docs/operations.md); trailing commas are not (MistakesNameTheKey).
        Assert.Single(ConfigLoader.Parse("vop.json", Good.Replace("\"links\": [", "/* one link */ \"links\": [", StringComparison.Ordinal)).Links);
    }

    [Theory]
    [InlineData("\"mtu\": 1500", "\"mtu\": 1500, \"colour\": \"red\"", "links[0].devices[0].colour: unknown key (line 5; links[0].devices[0] takes type, name, tap, mac, mtu, queueSize, queuePairs, mode, datapath, end, ports, runDir)")]
    [InlineData("\"kind\": \"loopback\",", "\"kind\": \"loopback\", \"speed\": 1,", "links[0].speed: unknown key (line 4; links[0] takes name, kind,")]
    [InlineData("\"mtu\": 1500", "\"mtuu\": 1500", "links[0].devices[0].mtuu: unknown key; did you mean mtu? (line 5)")]
    [InlineData("\"mtu\": 1500", "\"MTU\": 1500", "links[0].devices[0].MTU: unknown key; did you mean mtu? (line 5)")]
    [InlineData("\"windowSize\"", "\"windowsize\"", "links[0].windowsize: unknown key; did you mean windowSize? (line 4)")]
    [InlineData("\"links\": [", "\"link\": [ ], \"links\": [", "link: unknown key; did you mean links? (line 3)")]
    [InlineData("52:54:00:12:34:56", "52:54:00:12:34", "links[0].devices[0].mac: '52:54:00:12:34' is not a MAC address")]
    [InlineData("52:54:00:12:34:56", "zz:54:00:12:34:56", "links[0].devices[0].mac: 'zz:54:00:12:34:56' is not a MAC address")]
    [InlineData("52:54:00:12:34:56", "01:00:5e:00:00:01", "links[0].devices[0].mac: '01:00:5e:00:00:01' is a multicast or zero address")]
    [InlineData("\"64M\"", "\"3M\"", "links[0].windowSize: 3M must be a power of two from 1M to 1G (an ivshmem BAR is a power of two); the nearest are 2M and 4M")]
    [InlineData("\"64M\"", "\"16M\"", "links[0].windowSize: 16M is too small for the devices' buffers")]
    [InlineData("\"64M\"", "\"lots\"", "links[0].windowSize: 'lots' is not a size")]
    [InlineData("\"64M\"", "\"4G\"", "links[0].windowSize: 4G must be a power of two from 1M to 1G")]
    [InlineData("\"role\": \"device\"", "\"role\": \"master\"", "links[0].role: 'master' must be device or driver")]
    [InlineData("\"kind\": \"loopback\"", "\"kind\": \"carrier-pigeon\"", "links[0].kind: 'carrier-pigeon' is not a supported link kind")]
    [InlineData("vop-card0", "a-very-long-tap-name", "links[0].devices[0].tap: tap name 'a-very-long-tap-name' is longer than 15 bytes")]
    [InlineData("vop-card0", "bad/name", "links[0].devices[0].tap: tap name 'bad/name' contains a character")]
    [InlineData("\"mtu\": 1500", "\"mtu\": 1500, \"queuePairs\": 0", "links[0].devices[0].queuePairs: 0 must be 1..7 (2 queues per pair and the control queue fit a device slot's 16)")]
    [InlineData("\"mtu\": 1500", "\"mtu\": 1500, \"queuePairs\": 8", "links[0].devices[0].queuePairs: 8 must be 1..7 (2 queues per pair and the control queue fit a device slot's 16)")]
    [InlineData("\"mtu\": 1500", "\"mtu\": 1500, \"mode\": \"tunnel\"", "links[0].devices[0].mode: 'tunnel' is not a net device mode (tap, tun)")]
    [InlineData("\"mtu\": 1500", "\"mtu\": 1500, \"mode\": 1", "links[0].devices[0].mode: expected a string, got a number")]
    [InlineData("\"mtu\": 1500", "\"mtu\": 20", "links[0].devices[0].mtu: 20 must be 68..65521")]
    [InlineData("\"mtu\": 1500", "\"mtu\": 65535", "links[0].devices[0].mtu: 65535 must be 68..65521")]
    [InlineData("\"mtu\": 1500", "\"mtu\": \"big\"", "links[0].devices[0].mtu: expected a number, got a string (line 5)")]
    [InlineData("\"mtu\": 1500", "\"mtu\": \"1500\"", "links[0].devices[0].mtu: expected a number, got a string; write 1500 without quotes (line 5)")]
    [InlineData("\"mtu\": 1500", "\"mtu\": 1.5", "links[0].devices[0].mtu: expected a whole number from -2147483648 to 2147483647, got 1.5 (line 5)")]
    [InlineData("\"mtu\": 1500", "\"mtu\": true", "links[0].devices[0].mtu: expected a number, got a boolean (line 5)")]
    [InlineData("\"64M\"", "67108864", "links[0].windowSize: expected a string, got a number; write \"67108864\" in quotes (line 4)")]
    [InlineData("\"devices\": [", "\"devices\": {}, \"x\": [", "links[0].devices: expected an array of objects, got an object (line 5)")]
    [InlineData("\"links\": [", "\"metrics\": \"off\", \"links\": [", "metrics: expected an object, got a string (line 3)")]
    [InlineData("\"mtu\": 1500 }", "\"mtu\": 1500, }", "not valid JSON at line 5: a comma before '}' (JSON allows no comma after the last item; remove it)")]
    [InlineData("1500 } ]", "1500 }, ]", "not valid JSON at line 5: a comma before ']' (JSON allows no comma after the last item; remove it)")]
    [InlineData("/run/vop/card0.sock", "relative.sock", "links[0].socket: 'relative.sock' must be an absolute path")]
    [InlineData("\"type\": \"net\"", "\"type\": \"block\"", "links[0].devices[0].type: 'block' is not a supported device type")]
    [InlineData("\"name\": \"card0\"", "\"name\": \"Card 0\"", "links[0].name: 'Card 0' must be 1-32 of a-z 0-9 _ -")]
    [InlineData("\"socket\": \"/run/vop/card0.sock\",", "", "links[0].socket: required")]
    [InlineData("\"links\": [", "\"links\": [ ], \"x\": [", "vop.json: x: unknown key (line 3; the top level takes links, metrics, runDir)")]
    [InlineData("\"windowSize\"", "\"poll\": \"spin\", \"windowSize\"", "links[0].poll: 'spin' must be adaptive, busy, sleep")]
    [InlineData("\"windowSize\"", "\"cpus\": \"0-x\", \"windowSize\"", "links[0].cpus: '0-x' is not a CPU number (0..1023) or range such as 0-3")]
    [InlineData("\"windowSize\"", "\"cpus\": \"3-1\", \"windowSize\"", "links[0].cpus: '3-1' is a range that runs backwards")]
    [InlineData("\"windowSize\"", "\"cpus\": \"1023\", \"windowSize\"", "links[0].cpus: CPU 1023 is not online on this machine (online: 0")]
    [InlineData("\"windowSize\"", "\"cpus\": 0, \"windowSize\"", "links[0].cpus: expected a string, got a number; write \"0\" in quotes")]
    public void MistakesNameTheKey(string from, string to, string expected)
    {
        string text = Good.Replace(from, to, StringComparison.Ordinal);
        Assert.NotEqual(Good, text);
        ConfigException e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", text));
        Assert.StartsWith("vop.json: ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Fact]
    public void PollModeAndCpusAreParsed()
    {
        Assert.Equal(Vop.Links.Devices.PumpSettings.Default, ConfigLoader.Parse("vop.json", Good).Links[0].Pumps);
        string text = Good.Replace("\"windowSize\"", "\"poll\": \"busy\", \"cpus\": \"0, 0-0\", \"windowSize\"", StringComparison.Ordinal);
        Vop.Links.Devices.PumpSettings p = ConfigLoader.Parse("vop.json", text).Links[0].Pumps;
        Assert.Equal(Vop.Links.Devices.PollMode.Busy, p.Poll);
        Assert.Equal("0", p.Cpus?.ToString());
    }

    [Fact]
    public void ConsoleDevicesAreValidated()
    {
        string console = Good.Replace("\"mtu\": 1500 } ]", "\"mtu\": 1500 }, { \"type\": \"console\", \"end\": \"host\" } ]", StringComparison.Ordinal);
        ConsoleConfigEntry c = Assert.IsType<ConsoleConfigEntry>(ConfigLoader.Parse("vop.json", console).Links[0].Devices[1]);
        Assert.Equal(ConsoleEnd.Host, c.End);
        Assert.Equal(["console", "ssh"], c.Ports.Select(p => p.Name));
        Assert.Equal("/run/vop", c.RunDir);

        string Bad(string device) => Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", Good.Replace("\"mtu\": 1500 } ]", "\"mtu\": 1500 }, " + device + " ]", StringComparison.Ordinal))).Message;
        Assert.Contains("devices[1].end: 'middle' must be host or card", Bad("{ \"type\": \"console\", \"end\": \"middle\" }"));
        Assert.Contains("devices[1].end: required", Bad("{ \"type\": \"console\" }"));
        Assert.Contains("devices[1].tap: a console device has no tap", Bad("{ \"type\": \"console\", \"end\": \"card\", \"tap\": \"x\" }"));
        Assert.Contains("devices[1].mode: a console device has no mode", Bad("{ \"type\": \"console\", \"end\": \"card\", \"mode\": \"tun\" }"));
        Assert.Contains("devices[1].ports[1].name: 'ssh' is used by another port", Bad("{ \"type\": \"console\", \"end\": \"card\", \"ports\": [ { \"name\": \"ssh\" }, { \"name\": \"ssh\" } ] }"));
        Assert.Contains("devices[1].ports[0].connect: 'here' is not an address:port", Bad("{ \"type\": \"console\", \"end\": \"card\", \"ports\": [ { \"name\": \"ssh\", \"connect\": \"here\" } ] }"));
        Assert.Contains("devices[1].ports: a console device has 1 to 7 ports", Bad("{ \"type\": \"console\", \"end\": \"card\", \"ports\": [ ] }"));
        Assert.Contains("links[0].vectors: 4 is too few", Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", console.Replace("\"windowSize\"", "\"vectors\": 4, \"windowSize\"", StringComparison.Ordinal))).Message);
    }

    [Fact]
    public void VhostUserLinksAreValidated()
    {
        const string vhost = """
            { "links": [ { "name": "vm0", "kind": "vhost-user", "socket": "/run/vop/vm0.sock",
                "devices": [ { "type": "net", "name": "net0", "tap": "vop-vm0" } ] } ] }
            """;
        LinkConfig l = Assert.Single(ConfigLoader.Parse("vop.json", vhost).Links);
        Assert.Equal(LinkKind.VhostUser, l.Kind);
        Assert.Equal("vhost-user", l.Kind.Name());
        Assert.Equal(LinkRole.Device, l.Role);
        Assert.False(l.VhostUserConnect);
        Assert.True(ConfigLoader.Parse("vop.json", vhost.Replace("\"kind\"", "\"mode\": \"connect\", \"kind\"", StringComparison.Ordinal)).Links[0].VhostUserConnect);

        string Bad(string from, string to) => Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", vhost.Replace(from, to, StringComparison.Ordinal))).Message;
        Assert.Contains("links[0].role: 'driver': vop is always the device", Bad("\"kind\"", "\"role\": \"driver\", \"kind\""));
        Assert.Contains("links[0].mode: 'both' must be listen", Bad("\"kind\"", "\"mode\": \"both\", \"kind\""));
        Assert.Contains("links[0].windowSize: a vhost-user link has none", Bad("\"kind\"", "\"windowSize\": \"64M\", \"kind\""));
        Assert.Contains("links[0].socket: required", Bad("\"socket\": \"/run/vop/vm0.sock\",", string.Empty));
        Assert.Contains("links[0].socket: 'vm0.sock' must be an absolute path", Bad("/run/vop/vm0.sock", "vm0.sock"));
        Assert.Contains("links[0].devices: a vhost-user link serves exactly one net device", Bad("\"type\": \"net\"", "\"type\": \"console\", \"end\": \"host\""));
        Assert.Contains("links[0].devices[0].mac: the guest's MAC is QEMU's", Bad("\"tap\": \"vop-vm0\"", "\"tap\": \"vop-vm0\", \"mac\": \"52:54:00:12:34:57\""));
        Assert.Contains("links[0].mode: only vhost-user links have a mode", Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", Good.Replace("\"kind\"", "\"mode\": \"listen\", \"kind\"", StringComparison.Ordinal))).Message);
    }

    [Fact]
    public void DatapathIsPumpOrVhostNetWhereTheKernelHasIt()
    {
        Assert.Equal(Vop.Netstack.NetDatapath.Pump, Assert.IsType<NetDeviceEntry>(ConfigLoader.Parse("vop.json", Good).Links[0].Devices[0]).Options.Datapath);
        string With(string datapath) => Good.Replace("\"mtu\": 1500", $"\"mtu\": 1500, \"datapath\": \"{datapath}\"", StringComparison.Ordinal);
        string Bad(string text) => Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", text)).Message;
        Assert.Equal(Vop.Netstack.NetDatapath.Pump, Assert.IsType<NetDeviceEntry>(ConfigLoader.Parse("vop.json", With("pump")).Links[0].Devices[0]).Options.Datapath);
        Assert.Equal("vop.json: links[0].devices[0].datapath: 'kernel' is not a datapath (pump, vhost-net)", Bad(With("kernel")));

        // One line naming the key and the missing device where the kernel has no vhost-net (this build
        // machine's kernel: CONFIG_VHOST_NET is not set); accepted where /dev/vhost-net exists.
        if (!File.Exists("/dev/vhost-net"))
        {
            Assert.Equal("vop.json: links[0].devices[0].datapath: vhost-net needs /dev/vhost-net, which does not exist on this machine (modprobe vhost_net; or datapath \"pump\")", Bad(With("vhost-net")));
        }
        else
        {
            Assert.Equal(Vop.Netstack.NetDatapath.VhostNet, Assert.IsType<NetDeviceEntry>(ConfigLoader.Parse("vop.json", With("vhost-net")).Links[0].Devices[0]).Options.Datapath);
        }

        // Checked before the device exists: the driver side, several pairs, a vhost-user link and a console refuse it anyway.
        Assert.Contains("links[0].devices[0].datapath: vhost-net serves the device side", Bad(With("vhost-net").Replace("\"role\": \"device\"", "\"role\": \"driver\"", StringComparison.Ordinal).Replace(", \"mac\": \"52:54:00:12:34:56\", \"mtu\": 1500", string.Empty, StringComparison.Ordinal)));
        Assert.Contains("links[0].devices[0].datapath: vhost-net serves one queue pair here (queuePairs is 2)", Bad(With("vhost-net").Replace("\"mtu\": 1500", "\"mtu\": 1500, \"queuePairs\": 2", StringComparison.Ordinal)));
        Assert.Contains("links[0].devices[0].datapath: vhost-net moves Ethernet frames between the ring and a TAP", Bad(With("vhost-net").Replace("\"mtu\": 1500", "\"mtu\": 1500, \"mode\": \"tun\"", StringComparison.Ordinal)));
        const string vhost = """
            { "links": [ { "name": "vm0", "kind": "vhost-user", "socket": "/run/vop/vm0.sock",
                "devices": [ { "type": "net", "name": "net0", "tap": "vop-vm0", "datapath": "vhost-net" } ] } ] }
            """;
        Assert.Contains("links[0].devices[0].datapath: vhost-net runs a vop window's rings", Bad(vhost));
    }

    [Fact]
    public void VhostUserRefusesAQueueSize()
    {
        const string vhost = """
            { "links": [ { "name": "vm0", "kind": "vhost-user", "socket": "/run/vop/vm0.sock",
                "devices": [ { "type": "net", "name": "net0", "tap": "vop-vm0", "queueSize": 512 } ] } ] }
            """;
        ConfigException e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", vhost));
        Assert.StartsWith("vop.json: links[0].devices[0].queueSize: the guest's queue sizes are QEMU's (-device virtio-net-pci,rx_queue_size=", e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Fact]
    public void EveryLinkKindAndDoorbellHasOneSpelling()
    {
        foreach (LinkKind kind in Enum.GetValues<LinkKind>())
        {
            Assert.True(ConfigNames.LinkKinds.TryParse(kind.Name(), out LinkKind parsed));
            Assert.Equal(kind, parsed);
        }

        foreach (DoorbellKind doorbell in Enum.GetValues<DoorbellKind>())
        {
            Assert.True(ConfigNames.Doorbells.TryParse(doorbell.Name(), out DoorbellKind parsed));
            Assert.Equal(doorbell, parsed);
        }

        Assert.Equal("loopback, pci, ntb, vhost-user", ConfigNames.LinkKinds.List);
        Assert.Equal(LinkKind.Loopback, ConfigLoader.Parse("vop.json", Good.Replace("\"kind\": \"loopback\",", string.Empty, StringComparison.Ordinal)).Links[0].Kind);
        Assert.Equal(DoorbellKind.EventFd, ConfigLoader.Parse("vop.json", Good).Links[0].Doorbell);
    }

    [Fact]
    public void TheWindowMustHoldWhatTheDriverSideCarves()
    {
        // 1 MiB for the layout plus 2 queues x 256 buffers x 65600 bytes (12 + 65553 at the carver's 64-byte stride).
        Assert.Equal(65600UL, Vop.Netstack.Virtio.FrameSizes.MaxCarvedBuffer);
        string Bad(string size) => Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", Good.Replace("\"64M\"", $"\"{size}\"", StringComparison.Ordinal))).Message;
        // The need (33.1M) is stated, and the least size that holds it: windows are powers of two.
        Assert.Contains("links[0].windowSize: 32M is too small for the devices' buffers: needs at least 64M (a power of two ≥ 33.1M: 1M + 2 queues x queueSize x 64 KiB per net device)", Bad("32M"));
        string big = Good.Replace("\"mtu\": 1500", "\"mtu\": 1500, \"queueSize\": 4096", StringComparison.Ordinal);
        Assert.Contains("512M is too small for the devices' buffers: needs at least 1G (a power of two ≥ 513.5M", Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", big.Replace("\"64M\"", "\"512M\"", StringComparison.Ordinal))).Message);
        string huge = big.Replace("\"mtu\": 1500, \"queueSize\": 4096 }", "\"mtu\": 1500, \"queueSize\": 4096 }, { \"type\": \"net\", \"name\": \"net1\", \"tap\": \"t2\", \"queueSize\": 4096 }", StringComparison.Ordinal);
        Assert.Contains("1G is too small for the devices' buffers: they need 1026M (1M + 2 queues x queueSize x 64 KiB per net device), more than the largest window (1G); use fewer net devices or a smaller queueSize",
            Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", huge.Replace("\"64M\"", "\"1G\"", StringComparison.Ordinal))).Message);
        Assert.Equal(1UL << 30, ConfigLoader.Parse("vop.json", big.Replace("\"64M\"", "\"1G\"", StringComparison.Ordinal)).Links[0].WindowSize);
    }

    [Fact]
    public void QueuePairsCountInVectorsAndWindow()
    {
        string Pairs(int n) => Good.Replace("\"mtu\": 1500", $"\"mtu\": 1500, \"queuePairs\": {n}", StringComparison.Ordinal);
        NetDeviceEntry net = Assert.IsType<NetDeviceEntry>(ConfigLoader.Parse("vop.json", Pairs(7).Replace("\"64M\"", "\"256M\"", StringComparison.Ordinal)).Links[0].Devices[0]);
        Assert.Equal(7, net.Options.QueuePairs);

        // 2 pairs: 4 data queues and the control queue, each with a vector, plus the control vector.
        string fewVectors = Pairs(2).Replace("\"windowSize\"", "\"vectors\": 5, \"windowSize\"", StringComparison.Ordinal).Replace("\"64M\"", "\"128M\"", StringComparison.Ordinal);
        Assert.Contains("links[0].vectors: 5 is too few: the devices have 5 queues", Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", fewVectors)).Message);
        Assert.Contains("64M is too small for the devices' buffers: needs at least 128M (a power of two ≥ 65.1M: 1M + 2 queues x queuePairs x queueSize x 64 KiB per net device)",
            Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", Pairs(2))).Message);
    }

    [Fact]
    public void IvshmemDoorbellNeedsTheGuestsBarInEitherRole()
    {
        const string guest = """
            { "links": [ { "name": "host", "kind": "pci", "role": "driver", "path": "/sys/bus/pci/devices/0000:00:05.0/resource2",
                "windowSize": "64M", "doorbell": "ivshmem", "devices": [ { "type": "net", "tap": "vc0" } ] } ] }
            """;
        Assert.Equal(DoorbellKind.Ivshmem, Assert.Single(ConfigLoader.Parse("vop.json", guest).Links).Doorbell);
        Assert.Equal(DoorbellKind.Poll, Assert.Single(ConfigLoader.Parse("vop.json", guest.Replace("\"ivshmem\"", "\"poll\"", StringComparison.Ordinal)).Links).Doorbell);

        string Bad(string from, string to) => Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", guest.Replace(from, to, StringComparison.Ordinal))).Message;
        Assert.Contains("links[0].doorbell: 'msi' must be poll or ivshmem", Bad("\"ivshmem\"", "\"msi\""));
        Assert.Contains("links[0].path: doorbell ivshmem maps an ivshmem BAR2", Bad("resource2", "resource0"));

        // The device side too: its driver side is another guest on the same `vop ivshmem-server`.
        string device = guest.Replace("\"role\": \"driver\"", "\"role\": \"device\"", StringComparison.Ordinal).Replace("\"tap\": \"vc0\"", "\"tap\": \"vc0\", \"mac\": \"52:54:00:12:34:56\"", StringComparison.Ordinal);
        LinkConfig d = Assert.Single(ConfigLoader.Parse("vop.json", device).Links);
        Assert.Equal((LinkRole.Device, DoorbellKind.Ivshmem), (d.Role, d.Doorbell));
    }

    [Fact]
    public void NtbRegistersNameEveryKey()
    {
        const string ntb = """
            { "links": [ { "name": "peer", "kind": "ntb", "role": "device", "path": "/sys/bus/pci/devices/0000:03:00.1/resource2", "windowSize": "64M",
                "registers": { "path": "/sys/bus/pci/devices/0000:03:00.1/resource0", "offset": 0,
                  "doorbell": { "peerSet": 100, "status": 96, "mask": 104, "width": 16, "bits": 15 },
                  "scratchpads": { "local": 128, "peer": 1152, "count": 16 } },
                "devices": [ { "type": "net", "tap": "vn0", "mac": "52:54:00:12:34:60" } ] } ] }
            """;
        LinkConfig l = Assert.Single(ConfigLoader.Parse("vop.json", ntb).Links);
        Assert.Equal(DoorbellKind.Registers, l.Doorbell);
        Vop.Links.Pci.NtbRegisterFile r = Assert.IsType<Vop.Links.Pci.NtbRegisterFile>(l.Registers);
        Assert.Equal("/sys/bus/pci/devices/0000:03:00.1/resource0", r.Path);
        Assert.Equal(new Vop.Links.Pci.NtbRegisterLayout(100, 96, 104, 16, 15, 128, 1152, 16, Emulated: false), r.Layout);
        Assert.Equal(DoorbellKind.Registers, ConfigLoader.Parse("vop.json", ntb.Replace("\"windowSize\"", "\"doorbell\": \"registers\", \"windowSize\"", StringComparison.Ordinal)).Links[0].Doorbell);

        string Bad(string from, string to) => Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", ntb.Replace(from, to, StringComparison.Ordinal))).Message;
        Assert.Contains("links[0].registers: only ntb links have a register block (doorbell and scratchpad registers); this link is pci", Bad("\"ntb\"", "\"pci\""));
        Assert.Contains("links[0].doorbell: 'poll': a link with registers rings the NTB's doorbell registers", Bad("\"windowSize\"", "\"doorbell\": \"poll\", \"windowSize\""));
        Assert.Contains("links[0].registers.path: 'resource0' must be an absolute path", Bad("\"/sys/bus/pci/devices/0000:03:00.1/resource0\"", "\"resource0\""));
        Assert.Contains("links[0].registers.path: required", Bad("\"path\": \"/sys/bus/pci/devices/0000:03:00.1/resource0\", ", string.Empty));
        Assert.Contains("links[0].registers.offset: -4 must not be negative", Bad("\"offset\": 0,", "\"offset\": -4,"));
        Assert.Contains("links[0].registers.doorbell.width: 8 must be 16, 32 or 64", Bad("\"width\": 16", "\"width\": 8"));
        Assert.Contains("links[0].registers.doorbell.bits: 17 must be 1..16", Bad("\"bits\": 15", "\"bits\": 17"));
        Assert.Contains("links[0].registers.doorbell.peerSet: 101 (0x65) must be a multiple of 2", Bad("\"peerSet\": 100", "\"peerSet\": 101"));
        Assert.Contains("links[0].registers.doorbell.status: required", Bad("\"status\": 96, ", string.Empty));
        Assert.Contains("links[0].registers.doorbell.status: overlaps registers.doorbell.peerSet", Bad("\"status\": 96", "\"status\": 100"));
        Assert.Contains("links[0].registers.doorbell.peerSet: 16777216 must be 0..16777215", Bad("\"peerSet\": 100", "\"peerSet\": 16777216"));
        Assert.Contains("links[0].registers.scratchpads.count: 2 must be 4..256", Bad("\"count\": 16", "\"count\": 2"));
        Assert.Contains("links[0].registers.scratchpads.peer: overlaps registers.scratchpads.local", Bad("\"peer\": 1152", "\"peer\": 160"));
        Assert.Contains("links[0].registers.scratchpads.local: 130 (0x82) must be a multiple of 4", Bad("\"local\": 128", "\"local\": 130"));
        Assert.Contains("links[0].registers.scratchpads: required", Bad("\"scratchpads\": { \"local\": 128, \"peer\": 1152, \"count\": 16 }", "\"emulated\": false"));
        Assert.Contains("links[0].registers.doorbell.peerset: unknown key; did you mean peerSet?", Bad("\"peerSet\"", "\"peerset\""));
        Assert.Contains("links[0].registers.offset: the registers (0x0..0x4c0) overlap the window", Bad("/resource0", "/resource2"));
        Assert.Contains("links[0].registers: required with doorbell registers", RegistersMissing());

        string RegistersMissing()
        {
            const string plain = """
                { "links": [ { "name": "peer", "kind": "ntb", "role": "device", "path": "/dev/shm/w", "windowSize": "64M", "doorbell": "registers",
                    "devices": [ { "type": "net", "tap": "vn0", "mac": "52:54:00:12:34:60" } ] } ] }
                """;
            string e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", plain)).Message;
            Assert.Contains("links[0].doorbell: registers: only ntb links", Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", plain.Replace("\"ntb\"", "\"pci\"", StringComparison.Ordinal))).Message);
            return e;
        }
    }

    [Fact]
    public void DriverRoleRefusesWhatTheDeviceSideDecides()
    {
        string text = Good.Replace("\"role\": \"device\"", "\"role\": \"driver\"", StringComparison.Ordinal);
        ConfigException e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", text));
        Assert.Contains("links[0].devices[0].mac: set by the device side", e.Message);
        text = text.Replace(", \"mac\": \"52:54:00:12:34:56\", \"mtu\": 1500", string.Empty, StringComparison.Ordinal);
        e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", text));
        Assert.Contains("links[0].windowSize: the device side sizes the window", e.Message);
        text = text.Replace("\"windowSize\": \"64M\",", string.Empty, StringComparison.Ordinal);
        Assert.Equal(LinkRole.Driver, ConfigLoader.Parse("vop.json", text).Links[0].Role);
    }

    [Fact]
    public void MetricsListenAndLinkEndAreValidated()
    {
        Assert.Equal("127.0.0.1:9465", ConfigLoader.Parse("vop.json", Good).MetricsListen);
        string off = Good.Replace("\"links\": [", "\"metrics\": { \"listen\": \"off\" }, \"links\": [", StringComparison.Ordinal);
        Assert.Null(ConfigLoader.Parse("vop.json", off).MetricsListen);
        string bad = Good.Replace("\"links\": [", "\"metrics\": { \"listen\": \"everywhere\" }, \"links\": [", StringComparison.Ordinal);
        Assert.Contains("metrics.listen: 'everywhere' is not an address:port", Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", bad)).Message);
        string card = Good.Replace("\"kind\": \"loopback\",", "\"kind\": \"loopback\", \"end\": \"card\",", StringComparison.Ordinal);
        Assert.Equal(ConsoleEnd.Card, ConfigLoader.Parse("vop.json", card).Links[0].End);
        Assert.Equal(ConsoleEnd.Host, ConfigLoader.Parse("vop.json", Good).Links[0].End);
        string wrong = Good.Replace("\"kind\": \"loopback\",", "\"kind\": \"loopback\", \"end\": \"moon\",", StringComparison.Ordinal);
        Assert.Contains("links[0].end: 'moon' must be host or card", Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", wrong)).Message);
    }

    [Fact]
    public void DuplicatesAreRefused()
    {
        string twoLinks = Good.Replace("  ]\n}", ", { \"name\": \"card0\", \"role\": \"device\", \"socket\": \"/run/vop/b.sock\", \"devices\": [ { \"type\": \"net\", \"tap\": \"t2\" } ] } ]\n}", StringComparison.Ordinal);
        ConfigException e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", twoLinks));
        Assert.Contains("links[1].name: 'card0' is used by another link", e.Message);
    }

    [Fact]
    public void BrokenJsonSaysWhere()
    {
        ConfigException e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", "{ \"links\": [ }"));
        Assert.Contains("not valid JSON at line 1", e.Message);
        e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("vop.json", "{}"));
        Assert.Contains("links: at least one link is required", e.Message);
    }

    [Fact]
    public void CheckConfigExitsNonZeroWithOneLine()
    {
        string bad = Path.Combine(_dir, "bad.json");
        File.WriteAllText(bad, Good.Replace("52:54:00:12:34:56", "nope", StringComparison.Ordinal));
        (int code, string output, string err) = Run.In(null, Run.Vop("check-config", bad));
        Assert.Equal(2, code);
        Assert.Equal(string.Empty, output);
        Assert.Equal($"vop: {bad}: links[0].devices[0].mac: 'nope' is not a MAC address (six hex bytes like 52:54:00:12:34:56)", err.Trim());

        string good = Path.Combine(_dir, "good.json");
        File.WriteAllText(good, Good);
        (code, output, err) = Run.In(null, Run.Vop("check-config", good));
        Assert.True(code == 0, err);
        Assert.Contains("ok (1 link(s): card0 device with 1 device(s))", output);

        (code, _, err) = Run.In(null, Run.Vop("check-config", Path.Combine(_dir, "missing.json")));
        Assert.Equal(2, code);
        Assert.Contains("missing.json: cannot read", err);

        (code, _, err) = Run.In(null, Run.Vop("run", "--config", bad));
        Assert.Equal(2, code);
        Assert.Contains("is not a MAC address", err);
    }

    /// <summary>What a newcomer hits first, through the real `vop check-config`: exactly one line on stderr, exit code 2.</summary>
    [Theory]
    [InlineData("\"mtu\": 1500 }", "\"mtu\": 1500, }", "not valid JSON at line 5: a comma before '}' (JSON allows no comma after the last item; remove it)")]
    [InlineData("\"mtu\": 1500", "\"mtu\": \"big\"", "links[0].devices[0].mtu: expected a number, got a string (line 5)")]
    [InlineData("\"mtu\": 1500", "\"mtuu\": 1500", "links[0].devices[0].mtuu: unknown key; did you mean mtu? (line 5)")]
    [InlineData("\"mtu\": 1500", "\"mtu\": 65535", "links[0].devices[0].mtu: 65535 must be 68..65521 (a TAP's largest MTU is 65535 minus the 14-byte Ethernet header)")]
    [InlineData("\"64M\"", "\"32M\"", "links[0].windowSize: 32M is too small for the devices' buffers: needs at least 64M (a power of two ≥ 33.1M: 1M + 2 queues x queueSize x 64 KiB per net device)")]
    public void CheckConfigSaysWhatIsWrongInOneLine(string from, string to, string expected)
    {
        string file = Path.Combine(_dir, "vop.json");
        File.WriteAllText(file, Good.Replace(from, to, StringComparison.Ordinal));
        (int code, string output, string err) = Run.In(null, Run.Vop("check-config", file));
        Assert.Equal(2, code);
        Assert.Equal(string.Empty, output);
        Assert.Equal($"vop: {file}: {expected}", err.TrimEnd('\n'));
    }
}
