using Vop.Links.Devices;
using Vop.Links.Doorbells;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Metrics;

namespace Vop.Appliance.VirtioConsole;

/// <summary>virtio-console (device type 3) on the device side: the device names the ports.</summary>
public sealed class ConsoleDeviceBackend : IDeviceBackend, IDisposable
{
    public const ushort QueueDepth = 64;
    public const ulong Features = ConsoleProtocol.FeatureMultiport | ConsoleProtocol.FeatureSize | VirtioFeatures.Version1 | VirtioFeatures.EventIdx;

    private readonly IReadOnlyList<string> _portNames;
    private readonly PortSet _ports;
    private readonly EventFdDoorbell _work = new();
    private ConsoleDevicePump? _pump;

    public ConsoleDeviceBackend(string name, IReadOnlyList<string> portNames, PortSet ports)
    {
        Name = name;
        _portNames = portNames;
        _ports = ports;
        _ports.Changed = _work.Ring;
        foreach (string p in portNames)
        {
            _ports.Get(p); // host sockets exist from the start, at stable paths
        }

        Stats = [.. Enumerable.Range(0, ConsoleProtocol.QueueCount(portNames.Count)).Select(q => new QueueStats($"q{q}"))];
    }

    public string Name { get; }

    public DeviceType Type => DeviceType.Console;

    public ulong OfferedFeatures => Features;

    public byte[] Config => ConsoleProtocol.Config(_portNames.Count);

    public IReadOnlyList<ushort> QueueSizes => [.. Enumerable.Repeat(QueueDepth, ConsoleProtocol.QueueCount(_portNames.Count))];

    public IReadOnlyList<QueueStats> Stats { get; }

    public RingErrorKind Fault => _pump?.Fault ?? RingErrorKind.None;

    public PortSet Ports => _ports;

    public void Start(DeviceSession session)
    {
        Stop();
        _pump = new ConsoleDevicePump(Name, session, _work, [.. _portNames.Select(n => (n, _ports.Get(n)))]);
        _pump.Start();
    }

    public void Stop()
    {
        _pump?.Stop();
        _pump = null;
    }

    public void Dispose()
    {
        Stop();
        _ports.Dispose();
        _work.Dispose();
    }
}

/// <summary>virtio-console on the driver side: learns the ports and their names from the device.</summary>
public sealed class ConsoleDriverBackend : IDriverBackend, IDisposable
{
    private readonly PortSet _ports;
    private readonly EventFdDoorbell _work = new();
    private ConsoleDriverPump? _pump;

    public ConsoleDriverBackend(string name, PortSet ports)
    {
        Name = name;
        _ports = ports;
        _ports.Changed = _work.Ring;
        Stats = [.. Enumerable.Range(0, 16).Select(q => new QueueStats($"q{q}"))];
    }

    public string Name { get; }

    public DeviceType Type => DeviceType.Console;

    public IReadOnlyList<QueueStats> Stats { get; }

    public RingErrorKind Fault => _pump?.Fault ?? RingErrorKind.None;

    public PortSet Ports => _ports;

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
        _pump = new ConsoleDriverPump(Name, session, _work, _ports, ports);
        QueueCount = queues;
        _pump.Start();
    }

    public void Stop()
    {
        _pump?.Stop();
        _pump = null;
    }

    public void Dispose()
    {
        Stop();
        _ports.Dispose();
        _work.Dispose();
    }
}
