using Vop.Links.Devices;
using Vop.Links.Rings;
using Vop.Links.Stats;
using Vop.Links.Transport;

namespace Vop.TestSupport;

/// <summary>
/// A device with two queues that never starts a datapath: enough for a link's control loop. A fault
/// injected by the test lasts until the device is stopped, as a quarantined pump's would.
/// </summary>
public sealed class IdleDevice : IDeviceBackend
{
    private volatile bool _faulted;

    public string Name => "idle";

    public DeviceType Type => DeviceType.RingTest;

    public ulong OfferedFeatures => VirtioFeatures.Version1;

    public byte[] Config => [1, 2, 3, 4];

    public IReadOnlyList<ushort> QueueSizes => [16, 16];

    public IReadOnlyList<QueueStats> Stats { get; } = [new QueueStats("q0"), new QueueStats("q1")];

    public RingErrorKind Fault => _faulted ? RingErrorKind.PumpFault : RingErrorKind.None;

    public void InjectFault() => _faulted = true;

    public void Start(DeviceSession session)
    {
    }

    public void Stop() => _faulted = false;
}
