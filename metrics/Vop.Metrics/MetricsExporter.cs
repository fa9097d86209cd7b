using System.Globalization;
using System.Reflection;
using Prometheus;
using Vop.Links.Rings;
using Vop.Links.Stats;

namespace Vop.Metrics;

/// <summary>
/// Prometheus export at scrape time: the hot paths only bump plain fields of their <see cref="QueueStats"/>
/// cells; a before-collect callback copies them into prometheus-net counters with IncTo. Names follow
/// node_exporter: <c>vop_</c> prefix, base units, <c>_total</c> counters, direction in the name
/// (receive = card to host), labels link, device, queue; no per-packet or per-address labels.
/// </summary>
public sealed class MetricsExporter
{
    private static readonly string[] s_queueLabels = ["link", "device", "queue"];

    private readonly Func<MetricsSnapshot> _source;
    private readonly Counter _rxPackets;
    private readonly Counter _txPackets;
    private readonly Counter _rxBytes;
    private readonly Counter _txBytes;
    private readonly Counter _rxDrops;
    private readonly Counter _txDrops;
    private readonly Counter _batches;
    private readonly Counter _notified;
    private readonly Counter _suppressed;
    private readonly Counter _doorbells;
    private readonly Counter _ringErrors;
    private readonly Gauge _linkUp;
    private readonly Counter _resets;
    private readonly Gauge _deviceStatus;
    private readonly Gauge _deviceLive;
    private readonly Gauge _deviceInfo;
    private readonly Gauge _occupancy;
    private readonly Gauge _peerEpoch;
    private readonly Counter _peerResets;
    private readonly Counter _refusals;
    private readonly Counter _repairs;
    private readonly Counter _internalErrors;

    /// <summary>Every collector labelled by link first, for <see cref="Forget"/>.</summary>
    private readonly Collector<Counter.Child>[] _linkCounters;
    private readonly Collector<Gauge.Child>[] _linkGauges;

    /// <summary>The generation of each link exported so far (<see cref="LinkSeries.Generation"/>).</summary>
    private readonly Dictionary<string, long> _generations = [];

    public MetricsExporter(Func<MetricsSnapshot> source)
    {
        _source = source;
        Registry = Prometheus.Metrics.NewCustomRegistry();
        MetricFactory f = Prometheus.Metrics.WithCustomRegistry(Registry);
        string[] drop = [.. s_queueLabels, "reason"];
        _rxPackets = f.CreateCounter("vop_receive_packets_total", "Buffers (frames, console chunks) received: card to host.", s_queueLabels);
        _txPackets = f.CreateCounter("vop_transmit_packets_total", "Buffers (frames, console chunks) transmitted: host to card.", s_queueLabels);
        _rxBytes = f.CreateCounter("vop_receive_bytes_total", "Payload bytes received: card to host (virtio-net header included).", s_queueLabels);
        _txBytes = f.CreateCounter("vop_transmit_bytes_total", "Payload bytes transmitted: host to card (virtio-net header included).", s_queueLabels);
        _rxDrops = f.CreateCounter("vop_receive_drops_total", "Buffers dropped on the card-to-host path, by reason.", drop);
        _txDrops = f.CreateCounter("vop_transmit_drops_total", "Buffers dropped on the host-to-card path, by reason.", drop);
        _batches = f.CreateCounter("vop_queue_batches_total", "Batches processed; each publishes its ring index once.", s_queueLabels);
        _notified = f.CreateCounter("vop_queue_notifications_total", "Notifications (kicks, interrupts) this side sent to the peer.", s_queueLabels);
        _suppressed = f.CreateCounter("vop_queue_notifications_suppressed_total", "Index publishes after which the peer's event index asked for no notification.", s_queueLabels);
        _doorbells = f.CreateCounter("vop_queue_doorbells_total", "Doorbells (wake-ups) this side received for the queue.", s_queueLabels);
        _ringErrors = f.CreateCounter("vop_ring_errors_total", "Ring protocol violations by the peer, by kind; each quarantines its queue.", [.. s_queueLabels, "kind"]);
        _linkUp = f.CreateGauge("vop_link_up", "1 while the link's devices are live (peer attached and DRIVER_OK).", ["link", "role"]);
        _resets = f.CreateCounter("vop_link_resets_total", "Device resets, peer departures and quarantines seen on the link.", ["link"]);
        _deviceStatus = f.CreateGauge("vop_device_status", "virtio device status byte as accepted by the device side.", ["link", "device"]);
        _deviceLive = f.CreateGauge("vop_device_live", "1 while the device is live (DRIVER_OK, not broken).", ["link", "device"]);
        _deviceInfo = f.CreateGauge("vop_device_info", "Negotiated virtio features of a device, as an info metric.", ["link", "device", "type", "features"]);
        _occupancy = f.CreateGauge("vop_queue_occupancy", "Buffers in the ring at the last publish: outstanding (driver side) or available and not yet taken (device side).", s_queueLabels);
        _peerEpoch = f.CreateGauge("vop_peer_epoch", "The peer's epoch: a new random value on every peer start.", ["link"]);
        _peerResets = f.CreateCounter("vop_peer_resets_total", "Resets by reason: driver_reset, link_down (peer gone), broken (quarantine), peer_restart, needs_reset.", ["link", "reason"]);
        _refusals = f.CreateCounter("vop_peer_refusals_total", "What a peer offered that vop refused, by reason: extra_client, unsealed_memory, window_file, bad_header, bad_table.", ["link", "reason"]);
        _repairs = f.CreateCounter("vop_window_repairs_total", "Device-owned window parts found overwritten and rewritten by the device side, by part: header, state, slot.", ["link", "part"]);
        _internalErrors = f.CreateCounter("vop_internal_errors_total", "Exceptions contained by a link's supervisor threads (a bug or unforeseen peer behaviour; the link carried on).", ["link"]);
        _linkCounters = [_rxPackets, _txPackets, _rxBytes, _txBytes, _rxDrops, _txDrops, _batches, _notified, _suppressed, _doorbells, _ringErrors, _resets, _peerResets, _refusals, _repairs, _internalErrors];
        _linkGauges = [_linkUp, _deviceStatus, _deviceLive, _deviceInfo, _occupancy, _peerEpoch];
        Gauge build = f.CreateGauge("vop_build_info", "vop build information.", ["version"]);
        build.WithLabels(Assembly.GetEntryAssembly()?.GetName().Version?.ToString() ?? "0").Set(1);
        Registry.AddBeforeCollectCallback(Update);
    }

    public CollectorRegistry Registry { get; }

    /// <summary>
    /// Writes the text exposition format: the prometheus-net registry, then the latency histograms, whose
    /// buckets live in the queue cells (prometheus-net histograms cannot be set from outside).
    /// </summary>
    public async Task WriteAsync(Stream stream, CancellationToken cancel)
    {
        await Registry.CollectAndExportAsTextAsync(stream, cancel).ConfigureAwait(false);
        var b = new System.Text.StringBuilder();
        b.Append("# HELP vop_queue_latency_seconds Time from a buffer being made available to its completion being seen by the side that made it available, plus the time a frame waits between its TAP becoming readable and its buffer being published (docs/operations.md).\n");
        b.Append("# TYPE vop_queue_latency_seconds histogram\n");
        MetricsSnapshot snapshot = _source();
        foreach (QueueSeries q in snapshot.Queues)
        {
            LatencyHistogram.Write(b, "vop_queue_latency_seconds", $"link=\"{q.Link}\",device=\"{q.Device}\",queue=\"{q.Queue}\"", q.Stats);
        }

        b.Append("# HELP vop_queue_batch_size Buffers per batch (one index publish).\n");
        b.Append("# TYPE vop_queue_batch_size histogram\n");
        foreach (QueueSeries q in snapshot.Queues)
        {
            string labels = $"link=\"{q.Link}\",device=\"{q.Device}\",queue=\"{q.Queue}\"";
            long cumulative = 0;
            for (int i = 0; i <= QueueStats.BatchSizeBucketCount; i++)
            {
                cumulative += q.Stats.BatchSizeBuckets[i];
                string le = i < QueueStats.BatchSizeBucketCount ? (1 << i).ToString(CultureInfo.InvariantCulture) : "+Inf";
                b.Append(CultureInfo.InvariantCulture, $"vop_queue_batch_size_bucket{{{labels},le=\"{le}\"}} {cumulative}\n");
            }

            b.Append(CultureInfo.InvariantCulture, $"vop_queue_batch_size_sum{{{labels}}} {q.Stats.BatchSizeSum}\n");
            b.Append(CultureInfo.InvariantCulture, $"vop_queue_batch_size_count{{{labels}}} {cumulative}\n");
        }

        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(b.ToString());
        await stream.WriteAsync(bytes, cancel).ConfigureAwait(false);
    }

    /// <summary>Drops every series of <paramref name="link"/>: it was removed, or restarted with fresh counters.</summary>
    private void Forget(string link)
    {
        foreach (Collector<Counter.Child> c in _linkCounters)
        {
            foreach (string[] labels in c.GetAllLabelValues().Where(l => l.Length > 0 && l[0] == link).ToList())
            {
                c.RemoveLabelled(labels);
            }
        }

        foreach (Collector<Gauge.Child> g in _linkGauges)
        {
            foreach (string[] labels in g.GetAllLabelValues().Where(l => l.Length > 0 && l[0] == link).ToList())
            {
                g.RemoveLabelled(labels);
            }
        }
    }

    private void Update()
    {
        MetricsSnapshot s = _source();
        lock (_generations)
        {
            foreach (string gone in _generations.Keys.Where(k => !s.Links.Any(l => l.Link == k)).ToList())
            {
                Forget(gone);
                _generations.Remove(gone);
            }

            foreach (LinkSeries l in s.Links)
            {
                if (_generations.TryGetValue(l.Link, out long seen) && seen != l.Generation)
                {
                    Forget(l.Link);
                }

                _generations[l.Link] = l.Generation;
            }
        }
        foreach (QueueSeries q in s.Queues)
        {
            bool receive = q.Direction == "receive";
            string[] l = [q.Link, q.Device, q.Queue];
            QueueStats st = q.Stats;
            (receive ? _rxPackets : _txPackets).WithLabels(l).IncTo(st.Packets);
            (receive ? _rxBytes : _txBytes).WithLabels(l).IncTo(st.Bytes);
            _batches.WithLabels(l).IncTo(st.Batches);
            _notified.WithLabels(l).IncTo(st.NotificationsSent);
            _suppressed.WithLabels(l).IncTo(st.NotificationsSuppressed);
            _doorbells.WithLabels(l).IncTo(st.DoorbellsReceived);
            _occupancy.WithLabels(l).Set(st.Occupancy);
            Counter drops = receive ? _rxDrops : _txDrops;
            for (int r = 0; r < st.DropReasons.Count; r++)
            {
                drops.WithLabels(q.Link, q.Device, q.Queue, st.DropReasons[r]).IncTo(st.Drops[r]);
            }

            IReadOnlyList<string> kinds = RingErrorKindNames.All;
            for (int k = 1; k < kinds.Count; k++)
            {
                _ringErrors.WithLabels(q.Link, q.Device, q.Queue, kinds[k]).IncTo(st.RingErrors[k]);
            }
        }

        foreach (LinkSeries link in s.Links)
        {
            _linkUp.WithLabels(link.Link, link.Role).Set(link.Up ? 1 : 0);
            _resets.WithLabels(link.Link).IncTo(link.Resets);
            _peerEpoch.WithLabels(link.Link).Set(link.PeerEpoch);
            foreach ((string reason, long count) in link.ResetsByReason)
            {
                _peerResets.WithLabels(link.Link, reason).IncTo(count);
            }

            foreach ((string reason, long count) in link.Refusals)
            {
                _refusals.WithLabels(link.Link, reason).IncTo(count);
            }

            foreach ((string part, long count) in link.Repairs)
            {
                _repairs.WithLabels(link.Link, part).IncTo(count);
            }

            _internalErrors.WithLabels(link.Link).IncTo(link.InternalErrors);
        }

        foreach (DeviceSeries d in s.Devices)
        {
            _deviceStatus.WithLabels(d.Link, d.Device).Set(d.Status);
            _deviceLive.WithLabels(d.Link, d.Device).Set(d.Live ? 1 : 0);
            string features = "0x" + d.Features.ToString("x", CultureInfo.InvariantCulture);
            _deviceInfo.WithLabels(d.Link, d.Device, d.Type, features).Set(1);
        }
    }
}
