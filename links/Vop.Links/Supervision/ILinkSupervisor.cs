using Vop.Links.Stats;
using Vop.Links.Transport;

namespace Vop.Links.Supervision;

/// <summary>The virtio role a supervisor plays on its link (docs/architecture.md, "Roles").</summary>
public enum LinkSide
{
    /// <summary>Inserts the devices and serves the queues (window device side, vhost-user back-end).</summary>
    Device,

    /// <summary>Discovers the devices, negotiates, owns the buffers.</summary>
    Driver,
}

/// <summary>
/// One device of a supervised link, read at one moment (scrape or `vop status`). <see cref="Queues"/> are the
/// statistics cells of the queues the current (or last) session has; the cells themselves outlive sessions.
/// </summary>
/// <param name="Name">The device's name from the configuration.</param>
/// <param name="Type">virtio device type.</param>
/// <param name="Live">DRIVER_OK reached and the backend serving (not quarantined, peer not gone).</param>
/// <param name="Status">The virtio status byte as this side sees it (0xF once live where the role has no status of its own to read).</param>
/// <param name="Features">Negotiated features, 0 before the first negotiation.</param>
/// <param name="Queues">The statistics cells of the session's queues, in queue order.</param>
public readonly record struct SupervisedDevice(
    string Name,
    DeviceType Type,
    bool Live,
    uint Status,
    ulong Features,
    IReadOnlyList<QueueStats> Queues)
{
    /// <summary>How many queues the device has in the current (or last) session.</summary>
    public int QueueCount => Queues.Count;

    /// <summary>The first <paramref name="queueCount"/> cells of <paramref name="stats"/> (no more than there are).</summary>
    public static IReadOnlyList<QueueStats> Cells(IReadOnlyList<QueueStats> stats, int queueCount) =>
        queueCount >= stats.Count ? stats : [.. stats.Take(Math.Max(0, queueCount))];
}

/// <summary>
/// Runs one link for as long as vop runs: owns its control thread (an exception boundary), follows the peer
/// through negotiation, starts and stops the device backends, and recovers by itself when the peer resets a
/// device, leaves, restarts or misbehaves. The appliance sees every link kind and role through this contract
/// only; every member but <see cref="Start"/> and <see cref="IDisposable.Dispose"/> may be read from any
/// thread at any time (they read plain fields the control thread writes; values are a moment's view).
/// </summary>
public interface ILinkSupervisor : IDisposable
{
    /// <summary>The link's name from the configuration (thread names, log lines, metric label <c>link</c>).</summary>
    string Name { get; }

    LinkSide Side { get; }

    /// <summary>What supervises the link, for people: e.g. "device side over a shared window".</summary>
    string Description { get; }

    /// <summary>Starts the control thread; returns at once.</summary>
    void Start();

    /// <summary>True while any device of the link is live (the peer attached and DRIVER_OK).</summary>
    bool Up { get; }

    /// <summary>The peer's current epoch (changes on every peer start), 0 while no peer is seen.</summary>
    uint PeerEpoch { get; }

    /// <summary>
    /// <c>vop_link_resets_total</c>: the sum of <see cref="ResetsByReason"/> on the device side and vhost-user;
    /// sessions after the first on the driver side.
    /// </summary>
    long Resets { get; }

    /// <summary>
    /// <c>vop_peer_resets_total</c> by reason: every reason this role counts, zeros included, in a fixed
    /// order (<see cref="ResetReasons.DeviceSide"/> or <see cref="ResetReasons.DriverSide"/>).
    /// </summary>
    IReadOnlyList<KeyValuePair<ResetReason, long>> ResetsByReason { get; }

    /// <summary>Number of devices, in configuration order.</summary>
    int DeviceCount { get; }

    /// <summary>Device <paramref name="index"/> (0 ≤ index &lt; <see cref="DeviceCount"/>) as it is now.</summary>
    SupervisedDevice DeviceAt(int index);
}
