using System.Globalization;
using Vop.Netstack;
using Vop.Netstack.Tap;
using Vop.Netstack.VhostNet;

namespace Vop.Appliance.Config;

/// <summary>
/// A net device of a link into the <see cref="NetDeviceOptions"/> its backend runs with: TAP name, and on the
/// device side the MAC, MTU and queue size it puts in the config space. A driver-role device names only its
/// TAP, a name and the queue pairs it uses at most; the rest is the device side's to decide. Either role
/// chooses its mode (TAP or TUN) for itself.
/// </summary>
internal static class NetDeviceValidator
{
    public const int DefaultMtu = 1500;
    public const int DefaultQueueSize = 256;
    public const string DefaultMac = "52:54:00:00:00:01";

    /// <summary>Validates one net device; <paramref name="maxPairs"/> is the link kind's limit on queuePairs.</summary>
    public static NetDeviceOptions Validate(ConfigKey at, DeviceConfigFile d, LinkRole role, int maxPairs = NetDeviceOptions.MaxWindowQueuePairs)
    {
        string type = at["type"].Required(d.Type);
        if (type != "net")
        {
            throw at["type"].Error($"'{type}' is not a supported device type (net, console)");
        }

        if (d.End is not null || d.Ports is not null || d.RunDir is not null)
        {
            string key = d.End is not null ? "end" : d.Ports is not null ? "ports" : "runDir";
            throw at[key].Error("only a console device has it");
        }

        string tap = at["tap"].Required(d.Tap);
        try
        {
            TapDevice.ValidateName(tap);
        }
        catch (ArgumentException e)
        {
            throw at["tap"].Error(e.Message);
        }

        int mtu = d.Mtu ?? DefaultMtu;
        if (mtu is < 68 or > TapDevice.MaxMtu)
        {
            throw at["mtu"].Error($"{mtu} must be 68..{TapDevice.MaxMtu} (a TAP's largest MTU is 65535 minus the 14-byte Ethernet header)");
        }

        int queueSize = d.QueueSize ?? DefaultQueueSize;
        if (queueSize is < 16 or > 4096 || (queueSize & (queueSize - 1)) != 0)
        {
            throw at["queueSize"].Error($"{queueSize} must be a power of two from 16 to 4096");
        }

        int pairs = d.QueuePairs ?? 1;
        if (pairs < 1 || pairs > maxPairs)
        {
            throw at["queuePairs"].Error(maxPairs == NetDeviceOptions.MaxWindowQueuePairs
                ? $"{pairs} must be 1..{maxPairs} (2 queues per pair and the control queue fit a device slot's 16)"
                : $"{pairs} must be 1..{maxPairs}");
        }

        NetMode mode = d.Mode is null ? NetMode.Tap : ConfigNames.NetModes.Parse(at["mode"], d.Mode, $"is not a net device mode ({ConfigNames.NetModes.List})");
        NetDatapath datapath = Datapath(at["datapath"], d.Datapath, role, pairs, mode);

        byte[] mac;
        if (role == LinkRole.Device)
        {
            mac = ParseMac(at["mac"], d.Mac ?? DefaultMac);
        }
        else
        {
            if (d.Mac is not null || d.Mtu is not null || d.QueueSize is not null)
            {
                string key = d.Mac is not null ? "mac" : d.Mtu is not null ? "mtu" : "queueSize";
                throw at[key].Error("set by the device side's config space; remove it from a driver-role device");
            }

            mac = new byte[6];
        }

        return new NetDeviceOptions(d.Name ?? "net0", tap, mac, mtu, (ushort)queueSize, pairs, mode, datapath);
    }

    /// <summary>
    /// "pump" (default: vop's pump thread) or "vhost-net" (the kernel moves the packets; device side, one
    /// pair, and the kernel must have /dev/vhost-net now, so check-config says so before a run does).
    /// </summary>
    private static NetDatapath Datapath(ConfigKey at, string? text, LinkRole role, int pairs, NetMode mode)
    {
        switch (text)
        {
            case null or "pump":
                return NetDatapath.Pump;
            case "vhost-net":
                break;
            default:
                throw at.Error($"'{text}' is not a datapath (pump, vhost-net)");
        }

        if (role != LinkRole.Device)
        {
            throw at.Error("vhost-net serves the device side of a net device; a driver-role device always runs vop's pump");
        }

        if (pairs != 1)
        {
            throw at.Error($"vhost-net serves one queue pair here (queuePairs is {pairs}); use datapath \"pump\" for multiqueue");
        }

        if (mode != NetMode.Tap)
        {
            throw at.Error("vhost-net moves Ethernet frames between the ring and a TAP; a TUN device (mode \"tun\") needs vop's pump");
        }

        if (!VhostNetKernel.Exists)
        {
            throw at.Error("vhost-net needs /dev/vhost-net, which does not exist on this machine (modprobe vhost_net; or datapath \"pump\")");
        }

        return NetDatapath.VhostNet;
    }

    private static byte[] ParseMac(ConfigKey at, string text)
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
            throw at.Error($"'{text}' is not a MAC address (six hex bytes like 52:54:00:12:34:56)");
        }

        if ((mac[0] & 1) != 0 || mac.All(b => b == 0))
        {
            throw at.Error($"'{text}' is a multicast or zero address; a NIC needs a unicast one");
        }

        return mac;
    }
}
