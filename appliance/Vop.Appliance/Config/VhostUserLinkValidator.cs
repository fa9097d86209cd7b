namespace Vop.Appliance.Config;

/// <summary>
/// A vhost-user link: vop is the device (back-end) of one net device for a QEMU front-end. The guest's
/// memory is the window and QEMU sets the rings, so there is no window size, path, vector count, MAC or
/// queue size to set.
/// </summary>
internal static class VhostUserLinkValidator
{
    public static LinkConfig Validate(ConfigKey at, string name, LinkConfigFile l, string daemonRunDir)
    {
        if (l.Role is not null && (!ConfigNames.Roles.TryParse(l.Role, out LinkRole role) || role != LinkRole.Device))
        {
            throw at["role"].Error($"'{l.Role}': vop is always the device (back-end) on a vhost-user link");
        }

        string socket = PathRules.Socket(at["socket"], at["socket"].Required(l.Socket));
        bool connect = (l.Mode ?? "listen") switch
        {
            "listen" => false,
            "connect" => true,
            string other => throw at["mode"].Error($"'{other}' must be listen (QEMU connects) or connect (QEMU's chardev has server=on)"),
        };

        string? stray = l.WindowSize is not null ? "windowSize" : l.Vectors is not null ? "vectors" : l.Path is not null ? "path"
            : l.Offset is not null ? "offset" : l.Doorbell is not null ? "doorbell" : null;
        if (stray is not null)
        {
            throw at[stray].Error("a vhost-user link has none (the guest's memory is the window, its eventfds the doorbells)");
        }

        if (l.Devices is not { Count: 1 } || l.Devices[0].Type is not (null or "net"))
        {
            throw at["devices"].Error("a vhost-user link serves exactly one net device");
        }

        ConfigKey device = at["devices"][0];
        if (l.Devices[0].Mac is not null)
        {
            throw device["mac"].Error("the guest's MAC is QEMU's (-device virtio-net-pci,mac=...); a vhost-user device has none");
        }

        if (l.Devices[0].QueueSize is not null)
        {
            throw device["queueSize"].Error("the guest's queue sizes are QEMU's (-device virtio-net-pci,rx_queue_size=...,tx_queue_size=...); a vhost-user device has none");
        }

        if (l.Devices[0].Datapath is "vhost-net")
        {
            throw device["datapath"].Error("vhost-net runs a vop window's rings; on a vhost-user link QEMU can use the kernel's vhost-net itself (-netdev tap,vhost=on)");
        }

        var net = new NetDeviceEntry(NetDeviceValidator.Validate(device, l.Devices[0], LinkRole.Device, Vop.Netstack.NetDeviceOptions.MaxQueuePairs));
        var link = new LinkConfig(name, LinkKind.VhostUser, LinkRole.Device, socket, 0, 0, [net])
        {
            RunDir = PathRules.RunDir(at["runDir"], l.RunDir ?? daemonRunDir),
            VhostUserConnect = connect,
            Pumps = PumpSettingsValidator.Validate(at, l),
        };
        return LinkValidator.WithEnd(at, l, link);
    }
}
