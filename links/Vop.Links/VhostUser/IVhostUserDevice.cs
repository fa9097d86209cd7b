using Vop.Links.Devices;
using Vop.Links.Rings;
using Vop.Links.Stats;

namespace Vop.Links.VhostUser;

/// <summary>A device that a vhost-user front-end (QEMU) drives: its rings live in the guest's memory.</summary>
public interface IVhostUserDevice
{
    string Name { get; }

    /// <summary>virtio feature bits offered to the front-end (bit 30, protocol features, is added by the link).</summary>
    ulong VhostUserFeatures { get; }

    /// <summary>Queues the back-end serves (net: receive and transmit of one pair; the control queue stays in QEMU).</summary>
    int QueueCount { get; }

    IReadOnlyList<QueueStats> Stats { get; }

    /// <summary>All rings are ready: start serving on own threads. Must not block.</summary>
    void Start(DeviceQueueSet queues);

    /// <summary>Stop serving and join. Idempotent.</summary>
    void Stop();

    RingErrorKind Fault { get; }
}
