using Vop.Appliance.Tests.Infrastructure;
using Vop.Links.Devices;
using Vop.Links.Stats;
using Vop.TestSupport;
using Vop.VirtioConsole;

namespace Vop.Appliance.Tests;

/// <summary>
/// Both real console pumps over one in-process link (no root): after the control handshake and bytes
/// both ways on port 0, each queue's Packets and Bytes are the same on the device side and on the driver
/// side, so `vop status` at either end tells the same story about what crossed.
/// </summary>
public sealed class ConsoleCounterTests : IDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);
    private static readonly string[] s_portNames = ["console", "ssh"];

    private readonly InProcessLink _link = new(4 << 20, vectors: 8);
    private readonly PortSet _devicePorts = new(name => new RecordingEndpoint(name));
    private readonly PortSet _driverPorts = new(name => new RecordingEndpoint(name));
    private readonly ConsoleDeviceBackend _device;
    private readonly ConsoleDriverBackend _driver;
    private readonly DeviceSideLink _deviceSide;
    private readonly DriverSideLink _driverSide;

    public ConsoleCounterTests()
    {
        _device = new ConsoleDeviceBackend("console0", s_portNames, _devicePorts);
        _driver = new ConsoleDriverBackend("console0", _driverPorts);
        _deviceSide = new DeviceSideLink("counters", _link.Device, [_device]);
        _driverSide = new DriverSideLink("counters", _ => _link.Driver, [_driver]);
        _deviceSide.Start();
        _driverSide.Start();
    }

    public void Dispose()
    {
        _driverSide.Dispose();
        _deviceSide.Dispose();
        _driver.Dispose();
        _device.Dispose();
        _link.Dispose();
    }

    /// <summary>An endpoint that is open from the start, keeps what arrives and notes the peer's open state.</summary>
    private sealed class RecordingEndpoint : PortEndpoint
    {
        private long _received;
        private volatile bool _peerOpen;

        public RecordingEndpoint(string name)
            : base(name)
        {
            LocalOpen = true;
        }

        public long Received => Interlocked.Read(ref _received);

        public bool PeerOpen => _peerOpen;

        public override int InboundSpace => int.MaxValue;

        public override void Deliver(ReadOnlySpan<byte> data) => Interlocked.Add(ref _received, data.Length);

        public override void PeerOpenChanged(bool open) => _peerOpen = open;
    }

    private static string Describe(QueueStats device, QueueStats driver, int q) =>
        $"q{q}: device {device.Packets} packets/{device.Bytes} bytes, driver {driver.Packets} packets/{driver.Bytes} bytes";

    private bool BothSidesAgree(int queues)
    {
        for (int q = 0; q < queues; q++)
        {
            if (_device.Stats[q].Packets != _driver.Stats[q].Packets || _device.Stats[q].Bytes != _driver.Stats[q].Bytes)
            {
                return false;
            }
        }

        return true;
    }

    [Fact]
    public void EveryConsoleQueueCountsTheSamePacketsAndBytesOnBothSides()
    {
        var deviceConsole = (RecordingEndpoint)_devicePorts.Get("console");
        var driverConsole = (RecordingEndpoint)_driverPorts.Get("console");
        Assert.True(Run.WaitUntil(() => deviceConsole.PeerOpen && driverConsole.PeerOpen, s_wait), "port 0 never opened at both ends");

        // Bytes both ways on port 0: several chunks each (a chunk is one 4096-byte buffer at most).
        const int toDriver = 10_000;
        const int toDevice = 7_000;
        Assert.True(deviceConsole.Outbound.Write(new byte[toDriver]));
        Assert.True(driverConsole.Outbound.Write(new byte[toDevice]));
        Assert.True(Run.WaitUntil(() => driverConsole.Received == toDriver && deviceConsole.Received == toDevice, s_wait),
            $"bytes did not cross: driver got {driverConsole.Received} of {toDriver}, device got {deviceConsole.Received} of {toDevice}");

        // Completions still in flight settle within a pump tick; wait until both ends agree on every queue.
        int queues = ConsoleProtocol.QueueCount(s_portNames.Length);
        bool agreed = Run.WaitUntil(() => BothSidesAgree(queues), s_wait);
        Assert.True(agreed, string.Join("; ", Enumerable.Range(0, queues).Select(q => Describe(_device.Stats[q], _driver.Stats[q], q))));

        foreach (IReadOnlyList<QueueStats> stats in new[] { _device.Stats, _driver.Stats })
        {
            QueueStats rx = stats[ConsoleProtocol.ReceiveQueue(0)];
            QueueStats tx = stats[ConsoleProtocol.ReceiveQueue(0) + 1];
            QueueStats controlIn = stats[ConsoleProtocol.ControlReceiveQueue];
            QueueStats controlOut = stats[ConsoleProtocol.ControlTransmitQueue];

            // port0-rx and port0-tx: the payload bytes, in at least ceil(bytes / 4096) buffers.
            Assert.Equal(toDriver, rx.Bytes);
            Assert.True(rx.Packets >= 3, $"port0-rx packets {rx.Packets}");
            Assert.Equal(toDevice, tx.Bytes);
            Assert.True(tx.Packets >= 2, $"port0-tx packets {tx.Packets}");

            // ctrl-rx: PORT_ADD, PORT_NAME (with the names), CONSOLE_PORT, PORT_OPEN: 8 bytes each plus the names.
            Assert.True(controlIn.Packets >= 7, $"ctrl-rx packets {controlIn.Packets}");
            Assert.Equal((8 * controlIn.Packets) + s_portNames.Sum(n => n.Length), controlIn.Bytes);

            // ctrl-tx: DEVICE_READY, PORT_READY, PORT_OPEN: 8 bytes each.
            Assert.True(controlOut.Packets >= 5, $"ctrl-tx packets {controlOut.Packets}");
            Assert.Equal(8 * controlOut.Packets, controlOut.Bytes);
        }

        // Port 1 moved no bytes; its queues count nothing at either end (asserted equal above).
        Assert.Equal(0, _driver.Stats[ConsoleProtocol.ReceiveQueue(1)].Bytes);
        Assert.Equal(0, _driver.Stats[ConsoleProtocol.ReceiveQueue(1) + 1].Bytes);
    }
}
