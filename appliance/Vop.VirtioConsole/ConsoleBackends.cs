using Vop.Links.Devices;
using Vop.Links.Doorbells;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Stats;

namespace Vop.VirtioConsole;

/// <summary>
/// What both roles' virtio-console backends share: the port set (whose changes wake the pump), the work
/// doorbell, and a pump per session that stop joins.
/// </summary>
public abstract class ConsoleBackend : IDisposable
{
    private ConsolePumpBase? _pump;

    private protected ConsoleBackend(string name, PortSet ports)
    {
        Name = name;
        Ports = ports;
        Ports.Changed = Work.Ring;
    }

    public string Name { get; }

    public DeviceType Type => DeviceType.Console;

    public PortSet Ports { get; }

    public RingErrorKind Fault => _pump?.Fault ?? RingErrorKind.None;

    private protected EventFdDoorbell Work { get; } = new();

    /// <summary>Starts a session's pump; the caller stopped the previous one.</summary>
    private protected void Run(ConsolePumpBase pump)
    {
        _pump = pump;
        pump.Start();
    }

    public void Stop()
    {
        _pump?.Stop();
        _pump = null;
    }

    public void Dispose()
    {
        Stop();
        Ports.Dispose();
        Work.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>virtio-console (device type 3) on the device side: the device names the ports.</summary>
public sealed class ConsoleDeviceBackend : ConsoleBackend, IDeviceBackend
{
    public const ushort QueueDepth = 64;
    public const ulong Features = ConsoleProtocol.FeatureMultiport | ConsoleProtocol.FeatureSize | VirtioFeatures.Version1 | VirtioFeatures.EventIdx;

    private readonly IReadOnlyList<string> _portNames;

    public ConsoleDeviceBackend(string name, IReadOnlyList<string> portNames, PortSet ports)
        : base(name, ports)
    {
        _portNames = portNames;
        foreach (string p in portNames)
        {
            Ports.Get(p); // host sockets exist from the start, at stable paths
        }

        Stats = [.. Enumerable.Range(0, ConsoleProtocol.QueueCount(portNames.Count)).Select(q => new QueueStats($"q{q}", ConsoleDropReasonNames.All))];
    }

    public ulong OfferedFeatures => Features;

    public byte[] Config => ConsoleProtocol.Config(_portNames.Count);

    public IReadOnlyList<ushort> QueueSizes => [.. Enumerable.Repeat(QueueDepth, ConsoleProtocol.QueueCount(_portNames.Count))];

    public IReadOnlyList<QueueStats> Stats { get; }

    public void Start(DeviceSession session)
    {
        Stop();
        Run(new ConsoleDevicePump(Name, session, Work, [.. _portNames.Select(n => (n, Ports.Get(n)))]));
    }
}

/// <summary>virtio-console on the driver side: learns the ports and their names from the device.</summary>
public sealed class ConsoleDriverBackend : ConsoleBackend, IDriverBackend
{
    /// <summary>Ports a driver-side console serves: its statistics cells exist from the start; a device with more queues is refused at negotiation.</summary>
    public const int MaxPorts = 7;

    public ConsoleDriverBackend(string name, PortSet ports)
        : base(name, ports)
    {
        Stats = [.. Enumerable.Range(0, ConsoleProtocol.QueueCount(MaxPorts)).Select(q => new QueueStats($"q{q}", ConsoleDropReasonNames.All))];
    }

    public IReadOnlyList<QueueStats> Stats { get; }

    /// <summary>Queues of the device as last negotiated (0 before the first session).</summary>
    public int QueueCount { get; private set; }

    public ulong ChooseFeatures(DriverSlot slot) => slot.DeviceFeatures & ConsoleDeviceBackend.Features;

    public void Start(DriverSession session)
    {
        Stop();
        int queues = session.Queues.Count;
        if ((session.Negotiated & ConsoleProtocol.FeatureMultiport) == 0 || queues < 4 || queues % 2 != 0)
        {
            throw new InvalidDataException($"{Name}: console device without MULTIPORT or with {queues} queues");
        }

        int ports = Math.Min(ConsoleProtocol.MaxPorts(session.Slot.Config), (queues - 2) / 2);
        var pump = new ConsoleDriverPump(Name, session, Work, Ports, ports);
        QueueCount = queues;
        Run(pump);
    }
}
