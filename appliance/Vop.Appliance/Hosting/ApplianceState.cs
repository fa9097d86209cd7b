using Vop.Appliance.Config;
using Vop.Links.Supervision;
using Vop.Links.Transport;
using Vop.Metrics;
using Vop.Netstack;

namespace Vop.Appliance.Hosting;

/// <summary>Reads every link's state and statistics cells for the exporter and for `vop status`.</summary>
public sealed class ApplianceState
{
    private readonly LinkSet _links;
    private readonly ApplianceConfig _config;

    public ApplianceState(ApplianceConfig config, LinkSet links)
    {
        _config = config;
        _links = links;
    }

    /// <summary>What `vop status` shows of this daemon: who it is, then <see cref="Snapshot"/>.</summary>
    public StatusDocument Status() => WithKernelDatapaths(StatusDocument.From(Snapshot())) with
    {
        Daemon = _config.Name,
        Pid = Environment.ProcessId,
        Config = Path.GetFullPath(_config.Path),
        Control = RunDirectory.ControlSocket(_config.RunDir, _config.Name),
    };

    /// <summary>A device whose packets the kernel's vhost-net moves: its config entry (its queue counters would read 0 while it carries traffic).</summary>
    private static NetDeviceEntry? KernelDatapath(LinkConfig link, string device) =>
        link.Role == LinkRole.Device
            ? link.Devices.OfType<NetDeviceEntry>().FirstOrDefault(n => n.Name == device && n.Options.Datapath == NetDatapath.VhostNet)
            : null;

    /// <summary>Marks the kernel-datapath devices and gives them their TAP's own counters instead.</summary>
    private StatusDocument WithKernelDatapaths(StatusDocument doc) => doc with
    {
        Links = [.. doc.Links.Select(l =>
        {
            LinkConfig? c = _links.Current.Select(s => s.Config).FirstOrDefault(x => x.Name == l.Name);
            return c is null ? l : l with
            {
                Devices = [.. l.Devices.Select(d => KernelDatapath(c, d.Name) is NetDeviceEntry n
                    ? d with { Datapath = "vhost-net", Tap = StatusDocument.TapCounters.Read(n.Options.Tap) }
                    : d)],
            };
        })],
    };

    public MetricsSnapshot Snapshot()
    {
        var links = new List<LinkSeries>();
        var devices = new List<DeviceSeries>();
        var queues = new List<QueueSeries>();
        foreach (LinkService service in _links.Current)
        {
            LinkConfig c = service.Config;
            bool deviceSideIsHost = (c.Role == LinkRole.Device) == (c.End == ConsoleEnd.Host);
            var series = new LinkSeries(c.Name, c.Role.ToString().ToLowerInvariant(), false, 0)
            {
                Kind = c.Kind.Name(),
                Poll = ConfigNames.PollModes.Name(c.Pumps.Poll),
                Cpus = c.Pumps.Cpus?.ToString(),
                Generation = service.Generation,
                Refusals = service.Counters.Refusals,
                Repairs = service.Counters.Repairs,
                InternalErrors = service.Counters.InternalErrors,
            };
            if (service.Supervisor is ILinkSupervisor link)
            {
                for (int d = 0; d < link.DeviceCount; d++)
                {
                    SupervisedDevice device = link.DeviceAt(d);
                    string type = TypeLabel(device.Type);
                    string? mode = c.Devices.OfType<NetDeviceEntry>().FirstOrDefault(n => n.Name == device.Name)?.Options.Mode.Label();
                    devices.Add(new DeviceSeries(c.Name, device.Name, type, device.Status, device.Features, device.Live) { Mode = mode });

                    // vhost-net: the kernel moves the packets and vop counts none; no queue series that read as idle.
                    int queueCount = KernelDatapath(c, device.Name) is null ? device.QueueCount : 0;
                    for (int q = 0; q < queueCount; q++)
                    {
                        // Even queues carry device → driver in both virtio-net and virtio-console; a net
                        // device's control queue (last of an odd count) carries driver → device commands.
                        string name = QueueName(type, q, device.QueueCount);
                        bool deviceToDriver = q % 2 == 0 && name != ControlQueue;
                        string direction = deviceToDriver == deviceSideIsHost ? "transmit" : "receive";
                        queues.Add(new QueueSeries(c.Name, device.Name, name, direction, device.Queues[q]));
                    }
                }

                series = series with
                {
                    Up = link.Up,
                    Resets = link.Resets,
                    PeerEpoch = link.PeerEpoch,
                    ResetsByReason = link.ResetsByReason.ToDictionary(r => r.Key.Label(), r => r.Value),
                };
            }

            links.Add(series);
        }

        return new MetricsSnapshot(links, devices, queues);
    }

    /// <summary>The <c>type</c> label: the appliance carries net and console devices.</summary>
    public static string TypeLabel(DeviceType type) => type == DeviceType.Net ? "net" : "console";

    /// <summary>The name of a multiqueue net device's control queue (virtio 1.2 5.1.2: queue 2N).</summary>
    public const string ControlQueue = "ctrl";

    /// <summary>virtio queue names: rx0/tx0, rx1/tx1, …, ctrl for net (of <paramref name="count"/> queues); port0-rx, ctrl-rx, … for console.</summary>
    public static string QueueName(string type, int q, int count = 2) => type == "net"
        ? (count >= 3 && count % 2 == 1 && q == count - 1 ? ControlQueue : (q % 2 == 0 ? "rx" : "tx") + (q / 2).ToString(System.Globalization.CultureInfo.InvariantCulture))
        : q switch
        {
            2 => "ctrl-rx",
            3 => "ctrl-tx",
            _ => $"port{(q < 2 ? 0 : (q - 2) / 2)}-{(q % 2 == 0 ? "rx" : "tx")}",
        };
}
