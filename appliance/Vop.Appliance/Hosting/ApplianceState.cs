using Vop.Appliance.Config;
using Vop.VirtioConsole;
using Vop.Links.Stats;
using Vop.Metrics;

namespace Vop.Appliance.Hosting;

/// <summary>Reads every link's state and statistics cells for the exporter and for `vop status`.</summary>
public sealed class ApplianceState
{
    private readonly IReadOnlyList<LinkService> _links;

    public ApplianceState(IEnumerable<LinkService> links)
    {
        _links = [.. links];
    }

    public MetricsSnapshot Snapshot()
    {
        var links = new List<LinkSeries>();
        var devices = new List<DeviceSeries>();
        var queues = new List<QueueSeries>();
        foreach (LinkService service in _links)
        {
            LinkConfig c = service.Config;
            bool deviceSideIsHost = (c.Role == LinkRole.Device) == (c.End == ConsoleEnd.Host);
            bool anyLive = false;
            long resets = 0;
            for (int d = 0; d < c.Devices.Count; d++)
            {
                string name = c.Devices[d].Name;
                bool live;
                uint status;
                ulong features;
                IReadOnlyList<QueueStats> stats;
                int queueCount;
                string type = c.Devices[d] is NetConfigEntry ? "net" : "console";
                if (service.DeviceSide is { } ds)
                {
                    live = ds.IsLive(d);
                    status = (uint)ds.StatusOf(d);
                    features = ds.NegotiatedOf(d);
                    stats = ds.Devices[d].Stats;
                    queueCount = ds.Devices[d].QueueSizes.Count;
                    resets = ds.Resets + ds.PeerDepartures + ds.Quarantines;
                }
                else if (service.VhostUser is { } vu)
                {
                    live = vu.IsLive;
                    status = vu.DeviceStatus;
                    features = vu.Negotiated;
                    stats = vu.Device.Stats;
                    queueCount = vu.Device.QueueCount;
                    resets = vu.RingStops + vu.Departures + vu.Quarantines;
                }
                else if (service.DriverSide is { } dr)
                {
                    live = dr.IsLive(d);
                    features = dr.NegotiatedOf(d);
                    status = live ? 0xFu : 0u;
                    stats = dr.Devices[d].Stats;
                    queueCount = dr.Devices[d] is ConsoleDriverBackend cb ? cb.QueueCount : stats.Count;
                    resets = Math.Max(0, dr.Sessions - 1);
                }
                else
                {
                    continue;
                }

                anyLive |= live;
                devices.Add(new DeviceSeries(c.Name, name, type, status, features, live));
                for (int q = 0; q < queueCount && q < stats.Count; q++)
                {
                    // Even queues carry device → driver in both virtio-net and virtio-console.
                    bool deviceToDriver = q % 2 == 0;
                    string direction = deviceToDriver == deviceSideIsHost ? "transmit" : "receive";
                    queues.Add(new QueueSeries(c.Name, name, QueueName(type, q), direction, stats[q]));
                }
            }

            var series = new LinkSeries(c.Name, c.Role.ToString().ToLowerInvariant(), anyLive, resets)
            {
                Kind = c.Kind,
                Refusals = service.Counters.Refusals,
                Repairs = service.Counters.Repairs,
                InternalErrors = service.Counters.InternalErrors,
            };
            if (service.DeviceSide is { } side)
            {
                series = series with
                {
                    PeerEpoch = side.PeerEpoch,
                    ResetsByReason = new Dictionary<string, long> { ["driver_reset"] = side.Resets, ["link_down"] = side.PeerDepartures, ["broken"] = side.Quarantines },
                };
            }
            else if (service.VhostUser is { } vhost)
            {
                series = series with
                {
                    PeerEpoch = (uint)vhost.Connections,
                    ResetsByReason = new Dictionary<string, long> { ["driver_reset"] = vhost.RingStops, ["link_down"] = vhost.Departures, ["broken"] = vhost.Quarantines },
                };
            }
            else if (service.DriverSide is { } driver)
            {
                series = series with { PeerEpoch = driver.PeerEpoch, ResetsByReason = driver.EndsByReason };
            }

            links.Add(series);
        }

        return new MetricsSnapshot(links, devices, queues);
    }

    /// <summary>virtio queue names: rx0/tx0 for net; port0-rx, ctrl-rx, … for console.</summary>
    public static string QueueName(string type, int q) => type == "net"
        ? (q % 2 == 0 ? "rx" : "tx") + (q / 2).ToString(System.Globalization.CultureInfo.InvariantCulture)
        : q switch
        {
            2 => "ctrl-rx",
            3 => "ctrl-tx",
            _ => $"port{(q < 2 ? 0 : (q - 2) / 2)}-{(q % 2 == 0 ? "rx" : "tx")}",
        };
}
