using Vop.Links.Doorbells;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Windows;
using Vop.Links.Stats;

namespace Vop.Links.Devices;

/// <summary>What a device-side device gets when the driver reaches DRIVER_OK.</summary>
public sealed record DeviceSession(ILinkEnd End, DeviceSlot Slot, IReadOnlyList<DeviceQueue> Queues, ulong Negotiated)
{
    /// <summary>The datapath's view: the window, the queues, and the eventfds the driver rings per queue.</summary>
    public DeviceQueueSet QueueSet() =>
        new(End.Window.Accessor, Queues, [.. Queues.Select((_, q) => End.LocalDoorbell(Slot.Vectors[q]))], Negotiated);
}

/// <summary>
/// What a device's datapath needs whatever the link kind: the memory its rings and buffers live in (a
/// vop window, or a vhost-user guest's memory by guest-physical address), its queues, and per queue the
/// eventfd the driver kicks.
/// </summary>
public sealed record DeviceQueueSet(WindowAccessor Window, IReadOnlyList<DeviceQueue> Queues, IReadOnlyList<EventFdDoorbell> Kicks, ulong Negotiated);

/// <summary>What a driver-side device gets once features are accepted.</summary>
public sealed record DriverSession(ILinkEnd End, DriverSlot Slot, IReadOnlyList<DriverQueue> Queues, ulong Negotiated, BufferCarver Buffers);

/// <summary>A device implementation on the device side (virtio-net, virtio-console).</summary>
public interface IDeviceBackend
{
    string Name { get; }

    DeviceType Type { get; }

    ulong OfferedFeatures { get; }

    /// <summary>Config space to insert (read when the device is (re)inserted).</summary>
    byte[] Config { get; }

    IReadOnlyList<ushort> QueueSizes { get; }

    /// <summary>One statistics cell per queue, kept across sessions.</summary>
    IReadOnlyList<QueueStats> Stats { get; }

    /// <summary>The driver reached DRIVER_OK: start serving (own threads). Must not block.</summary>
    void Start(DeviceSession session);

    /// <summary>Reset, peer gone or quarantine: stop serving and join the pump. Idempotent.</summary>
    void Stop();

    /// <summary>None while healthy; the first quarantine reason of any queue otherwise.</summary>
    RingErrorKind Fault { get; }
}

/// <summary>A device implementation on the driver side.</summary>
public interface IDriverBackend
{
    string Name { get; }

    DeviceType Type { get; }

    IReadOnlyList<QueueStats> Stats { get; }

    /// <summary>Features to accept from <paramref name="slot"/>'s offer (VERSION_1 is required by the transport).</summary>
    ulong ChooseFeatures(DriverSlot slot);

    /// <summary>Features are accepted and the device is live: start (own threads). Must not block.</summary>
    void Start(DriverSession session);

    /// <summary>Stop and join the pump. Idempotent.</summary>
    void Stop();

    RingErrorKind Fault { get; }
}
