namespace Vop.Metrics;

/// <summary>One queue's statistics cell with its labels. Direction: receive = card to host (node_exporter style).</summary>
public sealed record QueueSeries(string Link, string Device, string Queue, string Direction, QueueStats Stats);

/// <summary>A link's state at scrape time.</summary>
public sealed record LinkSeries(string Link, string Role, bool Up, long Resets)
{
    /// <summary>The peer's current epoch (changes on every peer start); 0 while no peer is seen.</summary>
    public uint PeerEpoch { get; init; }

    /// <summary>Link kind (loopback, pci, ntb, vhost-user), for status output; not a metric label.</summary>
    public string Kind { get; init; } = string.Empty;

    /// <summary>Resets by bounded reason (driver_reset, link_down, broken, …).</summary>
    public IReadOnlyDictionary<string, long> ResetsByReason { get; init; } = new Dictionary<string, long>();
}

/// <summary>A device's state at scrape time.</summary>
public sealed record DeviceSeries(string Link, string Device, string Type, uint Status, ulong Features, bool Live);

/// <summary>Everything the exporter reads at scrape time.</summary>
public sealed record MetricsSnapshot(IReadOnlyList<LinkSeries> Links, IReadOnlyList<DeviceSeries> Devices, IReadOnlyList<QueueSeries> Queues);
