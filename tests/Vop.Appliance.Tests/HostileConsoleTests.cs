using System.Buffers.Binary;
using Vop.Appliance.Tests.Infrastructure;
using Vop.VirtioConsole;
using Vop.VirtioConsole.Endpoints;
using Vop.Links.Devices;
using Vop.Links.Loopback;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Windows;
using Vop.Links.Stats;

namespace Vop.Appliance.Tests;

/// <summary>
/// Hostile console control messages from a fake driver: an unknown port id, an invalid event and an
/// oversize message each quarantine the console device (NEEDS_RESET), not the process; a reset brings it back.
/// </summary>
public sealed class HostileConsoleTests : IDisposable
{
    private readonly InProcessLink _link = new(4 << 20, vectors: 8);
    private readonly ConsoleDeviceBackend _console;
    private readonly DeviceSideLink _deviceSide;

    public HostileConsoleTests()
    {
        _console = new ConsoleDeviceBackend("console0", ["console", "ssh"], new PortSet(name => new DiscardPortEndpoint(name)));
        _deviceSide = new DeviceSideLink("hostile", _link.Device, [_console]);
        _deviceSide.Start();
    }

    public void Dispose()
    {
        _deviceSide.Dispose();
        _console.Dispose();
        _link.Dispose();
    }

    /// <summary>A minimal, scriptable virtio-console driver that writes whatever the test says.</summary>
    private sealed class FakeDriver
    {
        private readonly WindowAccessor _w;
        private readonly DriverQueue _controlOut;
        private readonly DriverQueue _controlIn;
        private readonly ulong _buffers;
        private int _next;

        public FakeDriver(InProcessLink link)
        {
            _w = link.DriverWindow.Accessor;
            Assert.True(Run.WaitUntil(() => WindowHeader.TryRead(_w, out _) is null, TimeSpan.FromSeconds(10)));
            WindowHeader.TryRead(_w, out WindowGeometry g);
            Slot = DriverSlot.TryDiscover(_w, g, 0, link.Driver.VectorCount, out string? error)!;
            Assert.Null(error);
            Action kick = link.Driver.PeerDoorbell(0).Ring;
            Slot.Reset();
            Assert.True(Slot.WaitAcknowledged(TimeSpan.FromSeconds(5), kick));
            Assert.True(Slot.BeginNegotiation(ConsoleDeviceBackend.Features));
            Assert.True(Slot.WaitAcknowledged(TimeSpan.FromSeconds(5), kick) && Slot.FeaturesAccepted);
            var carver = new BufferCarver(g.Buffers);
            _buffers = carver.Carve(256, 1024);
            _controlIn = new DriverQueue(_w, Slot.Queues[ConsoleProtocol.ControlReceiveQueue], g.Buffers, true, link.Driver.PeerDoorbell(Slot.Vectors[2]), new QueueStats("cin"));
            _controlOut = new DriverQueue(_w, Slot.Queues[ConsoleProtocol.ControlTransmitQueue], g.Buffers, true, link.Driver.PeerDoorbell(Slot.Vectors[3]), new QueueStats("cout"));
            for (int i = 0; i < 16; i++)
            {
                _controlIn.TryAdd(new BufferSegment(Next(), 512, true), out _);
            }

            _controlIn.Publish();
            Slot.SetDriverOk();
            Assert.True(Slot.WaitAcknowledged(TimeSpan.FromSeconds(5), kick));
        }

        public DriverSlot Slot { get; }

        private ulong Next() => _buffers + ((ulong)(_next++ % 256) * 1024);

        public void Send(byte[] message)
        {
            ulong b = Next();
            message.CopyTo(_w.Bytes(b, message.Length));
            Assert.True(_controlOut.TryAdd(new BufferSegment(b, (uint)message.Length, false), out _));
            _controlOut.Publish();
        }

        public bool SawPortAdd()
        {
            // Look at what the device wrote into our control receive buffers.
            for (int i = 0; i < 16; i++)
            {
                ulong b = _buffers + ((ulong)i * 1024);
                if (BinaryPrimitives.ReadUInt16LittleEndian(_w.Bytes(b + 4, 2)) == ConsoleProtocol.PortAdd && _w.ReadU32(b) <= 1)
                {
                    return true;
                }
            }

            return false;
        }
    }

    public static TheoryData<string, byte[]> Hostile => new()
    {
        { "unknown port", ConsoleProtocol.Encode(99, ConsoleProtocol.PortReady, 1) },
        { "bad event", ConsoleProtocol.Encode(0, 77, 1) },
        { "device-only event from the driver", ConsoleProtocol.Encode(0, ConsoleProtocol.PortAdd, 0) },
        { "oversize", new byte[600] },
        { "short", new byte[5] },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public void HostileControlMessageQuarantinesTheDeviceNotTheProcess(string what, byte[] message)
    {
        var driver = new FakeDriver(_link);
        driver.Send(ConsoleProtocol.Encode(0, ConsoleProtocol.DeviceReady, 1));
        Assert.True(Run.WaitUntil(driver.SawPortAdd, TimeSpan.FromSeconds(10)), "device never added its ports");

        driver.Send(message);
        Assert.True(Run.WaitUntil(() => driver.Slot.NeedsReset, TimeSpan.FromSeconds(10)), $"{what}: device was not quarantined");
        Assert.Equal(1, _deviceSide.Quarantines);
        Assert.False(_deviceSide.IsLive(0));

        // Counted where vop_ring_errors_total{kind="control"} reads it: the control queue the message came in on.
        Assert.Equal(1, _console.Stats[ConsoleProtocol.ControlTransmitQueue].RingErrors[(int)RingErrorKind.Control]);

        // A reset brings the device back.
        var again = new FakeDriver(_link);
        Assert.False(again.Slot.NeedsReset);
        Assert.True(_deviceSide.IsLive(0));
    }
}
