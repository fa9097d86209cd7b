using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Vop.Links.Rings;
using Vop.Metrics;

namespace Vop.Appliance.Hosting;

/// <summary>What /status.json and `vop status -j` carry: links, devices and per-queue counters (ethtool -S style keys).</summary>
public sealed record StatusDocument(IReadOnlyList<StatusDocument.Link> Links)
{
    /// <summary>The daemon's name (its config file's name without .json).</summary>
    public string? Daemon { get; init; }

    public int? Pid { get; init; }

    /// <summary>The config file the daemon runs.</summary>
    public string? Config { get; init; }

    /// <summary>The daemon's control socket.</summary>
    public string? Control { get; init; }

    /// <summary>The document's JSON contract (snake_case keys, indented, nulls left out), generated at build time.</summary>
    public static JsonTypeInfo<StatusDocument> Json => StatusJson.Default.StatusDocument;

    public sealed record Link(string Name, string Role, bool Up, long Resets, IReadOnlyList<Device> Devices)
    {
        public string? Kind { get; init; }

        /// <summary>How the link's pumps wait for work: adaptive, busy or sleep (config key poll).</summary>
        public string? Poll { get; init; }

        /// <summary>The CPUs the link's pumps are pinned to (config key cpus), or null.</summary>
        public string? Cpus { get; init; }
    }

    public sealed record Device(string Name, string Type, bool Live, uint Status, string Features, IReadOnlyList<Queue> Queues)
    {
        /// <summary>A net device's local interface, "tap" or "tun" (absent for a console).</summary>
        public string? Mode { get; init; }

        /// <summary>"vhost-net" when the kernel moves this device's packets (then vop has no queue counters: <see cref="Queues"/> is empty); absent for vop's pump.</summary>
        public string? Datapath { get; init; }

        /// <summary>The TAP's own counters (/proc/net/dev), shown for a device whose packets vop does not see.</summary>
        public TapCounters? Tap { get; init; }
    }

    /// <summary>
    /// A TAP's kernel counters. rx: frames the datapath wrote into the TAP (from the driver side); tx: frames
    /// the host's stack sent out through the TAP (toward the driver side).
    /// </summary>
    public sealed record TapCounters(string Name, long RxPackets, long RxBytes, long TxPackets, long TxBytes, long RxDropped, long TxDropped)
    {
        /// <summary>The counters of <paramref name="tap"/> in this process's network namespace, or null when it is not there.</summary>
        public static TapCounters? Read(string tap)
        {
            string[] lines;
            try
            {
                lines = File.ReadAllLines("/proc/self/net/dev");
            }
            catch (IOException)
            {
                return null;
            }

            foreach (string line in lines)
            {
                int colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon < 0 || line[..colon].Trim() != tap)
                {
                    continue;
                }

                // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs drop ...
                long[] v = [.. line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(x => long.Parse(x, System.Globalization.CultureInfo.InvariantCulture))];
                return v.Length < 12 ? null : new TapCounters(tap, v[1], v[0], v[9], v[8], v[3], v[11]);
            }

            return null;
        }
    }

    public sealed record Queue(
        string Name,
        string Direction,
        long Packets,
        long Bytes,
        long Batches,
        long NotificationsSent,
        long NotificationsSuppressed,
        long Doorbells,
        IReadOnlyDictionary<string, long> Drops,
        IReadOnlyDictionary<string, long> RingErrors,
        double? PacketsPerSecond = null,
        double? BitsPerSecond = null);

    public static StatusDocument From(MetricsSnapshot s) => new([.. s.Links.Select(l => new Link(
        l.Link,
        l.Role,
        l.Up,
        l.Resets,
        [.. s.Devices.Where(d => d.Link == l.Link).Select(d => new Device(
            d.Device,
            d.Type,
            d.Live,
            d.Status,
            "0x" + d.Features.ToString("x", System.Globalization.CultureInfo.InvariantCulture),
            [.. s.Queues.Where(q => q.Link == l.Link && q.Device == d.Device).Select(q => new Queue(
                q.Queue,
                q.Direction,
                q.Stats.Packets,
                q.Stats.Bytes,
                q.Stats.Batches,
                q.Stats.NotificationsSent,
                q.Stats.NotificationsSuppressed,
                q.Stats.DoorbellsReceived,
                q.Stats.DropReasons.Select((r, i) => (r, v: q.Stats.Drops[i])).Where(x => x.v != 0).ToDictionary(x => x.r, x => x.v),
                RingErrorKindNames.All.Select((k, i) => (k, v: q.Stats.RingErrors[i])).Where(x => x.v != 0).ToDictionary(x => x.k, x => x.v)))]) { Mode = d.Mode })]) { Kind = l.Kind.Length > 0 ? l.Kind : null, Poll = l.Poll.Length > 0 ? l.Poll : null, Cpus = l.Cpus })]);
}

/// <summary>What `vop status -j` prints: every daemon it reached, each with its links.</summary>
public sealed record StatusReport(IReadOnlyList<StatusDocument> Daemons)
{
    public static JsonTypeInfo<StatusReport> Json => StatusJson.Default.StatusReport;
}

/// <summary>
/// Source-generated (de)serializer of <see cref="StatusDocument"/> for /status.json and `vop status`; no
/// reflection, so the Native AOT build serializes exactly what the JIT build does.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(StatusDocument))]
[JsonSerializable(typeof(StatusReport))]
internal sealed partial class StatusJson : JsonSerializerContext;
