using Vop.Links.Stats;

namespace Vop.Metrics;

/// <summary>One queue's statistics cell with its labels. Direction: receive = card to host (node_exporter style).</summary>
public sealed record QueueSeries(string Link, string Device, string Queue, string Direction, QueueStats Stats);

/// <summary>A link's state at scrape time.</summary>
public sealed record LinkSeries(string Link, string Role, bool Up, long Resets)
{
    /// <summary>
    /// Which run of the link this is: a reload that restarts or re-adds a link gives it a new generation, and
    /// the exporter drops the old run's series so the new counters, starting from 0, are not hidden behind them.
    /// </summary>
    public long Generation { get; init; }

    /// <summary>The peer's current epoch (changes on every peer start); 0 while no peer is seen.</summary>
    public uint PeerEpoch { get; init; }

    /// <summary>Link kind (loopback, pci, ntb, vhost-user), for status output; not a metric label.</summary>
    public string Kind { get; init; } = string.Empty;

    /// <summary>How the link's pumps wait (adaptive, busy, sleep), for status output; not a metric label.</summary>
    public string Poll { get; init; } = string.Empty;

    /// <summary>The CPUs the link's pumps are pinned to ("0-1"), or null; for status output.</summary>
    public string? Cpus { get; init; }

    /// <summary>Resets by bounded reason (driver_reset, link_down, broken, …).</summary>
    public IReadOnlyDictionary<string, long> ResetsByReason { get; init; } = new Dictionary<string, long>();

    /// <summary>What a peer offered that was refused, by bounded reason (extra_client, unsealed_memory, …).</summary>
    public IReadOnlyDictionary<string, long> Refusals { get; init; } = new Dictionary<string, long>();

    /// <summary>Device-owned window parts found overwritten and rewritten, by part (header, state, slot).</summary>
    public IReadOnlyDictionary<string, long> Repairs { get; init; } = new Dictionary<string, long>();

    /// <summary>Exceptions a supervisor thread contained (bugs or unforeseen peer behaviour).</summary>
    public long InternalErrors { get; init; }
}

/// <summary>A device's state at scrape time.</summary>
public sealed record DeviceSeries(string Link, string Device, string Type, uint Status, ulong Features, bool Live)
{
    /// <summary>A net device's local interface: "tap" or "tun"; null for other devices.</summary>
    public string? Mode { get; init; }
}

/// <summary>Everything the exporter reads at scrape time.</summary>
public sealed record MetricsSnapshot(IReadOnlyList<LinkSeries> Links, IReadOnlyList<DeviceSeries> Devices, IReadOnlyList<QueueSeries> Queues);
