using Microsoft.Extensions.Logging.Abstractions;
using Vop.Links.Devices;
using Vop.Links.Doorbells;
using Vop.Links.Rings;
using Vop.Links.Stats;
using Vop.Links.Windows;
using Vop.Netstack.Device;
using Vop.Netstack.Driver;
using Vop.Netstack.Tests.Infrastructure;
using Vop.Netstack.Virtio;
using Vop.TestSupport;

namespace Vop.Netstack.Tests;

/// <summary>
/// VIRTIO_NET_F_MQ with the real net backends of both roles over an in-process link (each TAP queue a
/// frame pipe): negotiation, VQ_PAIRS_SET, each pair carrying its own frames; and a hostile driver's
/// control commands against the device side's control queue.
/// </summary>
public sealed class MultiqueueTests
{
    private static readonly byte[] s_mac = [0x02, 0, 0, 0, 0, 0x01];

    [Fact]
    public void TwoPairsNegotiateMqSetPairsAndEachPairCarriesItsOwnFrames()
    {
        using var rig = new MqRig(devicePairs: 2, driverPairs: 2);
        Assert.Equal(NetFeatures.Multiqueue, rig.Negotiated & NetFeatures.Multiqueue);
        Assert.Equal(["rx0", "tx0", "rx1", "tx1", "ctrl"], rig.Device.Stats.Select(s => s.Name));
        Assert.Equal(["rx0", "tx0", "rx1", "tx1", "ctrl"], rig.Driver.Stats.Select(s => s.Name));

        // The driver's VQ_PAIRS_SET(2) went through the control queue and was answered before its pumps ran.
        Wait.Until(() => rig.Device.Stats[4].Packets == 1, "one control command served");
        for (int p = 0; p < 2; p++)
        {
            byte[] down = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(100 + p, p));
            byte[] up = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(200 + p, 10 + p));
            rig.HostPipes[p].Send(down);
            rig.CardPipes[p].Send(up);
            Assert.Equal(Frames.WithNumBuffers(down, 1), rig.CardPipes[p].Receive());
            Assert.Equal(up, rig.HostPipes[p].Receive());
        }

        Wait.Until(() => rig.Device.Stats.Take(4).All(s => s.Packets == 1), "each data queue of each pair moved one frame");
        Assert.Equal(RingErrorKind.None, rig.Device.Fault);
        Assert.Equal(RingErrorKind.None, rig.Driver.Fault);
    }

    [Fact]
    public void TwoPairsPumpsOfBothRolesAllocateNothingInSteadyState()
    {
        using var rig = new MqRig(devicePairs: 2, driverPairs: 2);
        NetPump[] pumps = [.. rig.Device.Pumps, .. rig.Driver.Pumps];
        Assert.Equal(4, pumps.Length);
        byte[][] down = [.. Enumerable.Range(0, 2).Select(p => Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(1000, p)))];
        byte[][] up = [.. Enumerable.Range(0, 2).Select(p => Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(1200, 5 + p)))];
        long rounds = 0;
        while (pumps.Any(p => p.BusyLoops < 3000))
        {
            Assert.True(rounds++ < 100_000, $"busy loops {string.Join(",", pumps.Select(p => p.BusyLoops))} after {rounds} rounds");
            for (int p = 0; p < 2; p++)
            {
                rig.HostPipes[p].Send(down[p]);
                rig.CardPipes[p].Send(up[p]);
                Assert.Equal(Frames.WithNumBuffers(down[p], 1), rig.CardPipes[p].Receive());
                Assert.Equal(up[p], rig.HostPipes[p].Receive());
            }
        }

        rig.Device.Stop();
        rig.Driver.Stop();
        foreach (NetPump p in pumps)
        {
            Assert.Null(p.Crash);
            Assert.True(p.AllocatedAfterWarmup >= 0, "never warm");
            Assert.Equal(0, p.AllocatedAfterWarmup);
        }
    }

    [Fact]
    public void ADriverOfOnePairDeclinesMqAndOnlyPairZeroRuns()
    {
        using var rig = new MqRig(devicePairs: 2, driverPairs: 1);
        Assert.Equal(0UL, rig.Negotiated & (NetFeatures.Mq | NetFeatures.CtrlVq));

        // The device still lays out 2 pairs and the control queue; the driver shows them all.
        Assert.Equal(5, rig.Driver.QueueCount);
        byte[] frame = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(64, 1));
        rig.HostPipes[0].Send(frame);
        Assert.Equal(Frames.WithNumBuffers(frame, 1), rig.CardPipes[0].Receive());

        // Pair 1 is not served: a frame its TAP queue holds stays there.
        rig.HostPipes[1].Send(frame);
        Assert.Null(rig.CardPipes[0].TryReceive(TimeSpan.FromMilliseconds(300)));
        Assert.Equal(0, rig.Device.Stats[2].Packets);
    }

    [Fact]
    public void OnePairOffersNoMqAndLaysOutTwoQueues()
    {
        using var pipe = new FramePipe("one");
        using var device = new NetDeviceBackend(new NetDeviceOptions("net0", "one", s_mac, 1500, 64), [pipe.Tap], NullLogger.Instance);
        Assert.Equal(0UL, device.OfferedFeatures & (NetFeatures.Mq | NetFeatures.CtrlVq));
        Assert.Equal(2, device.QueueSizes.Count);
        Assert.Equal(1, NetConfigSpace.Decode(device.Config).MaxQueuePairs);
        Assert.Equal(["rx0", "tx0"], device.Stats.Select(s => s.Name));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(0xFFFF)]
    public void AVqPairsSetOutsideOneToMaxIsAnsweredErrAndChangesNothing(int pairs)
    {
        using var rig = new ControlRig(maxPairs: 4);
        byte[] command = new byte[NetControl.PairsSetSize];
        NetControl.EncodePairsSet(command, (ushort)pairs);
        Assert.Equal(NetControl.Err, rig.Send(command));
        Assert.Empty(rig.Applied);

        // The queue is healthy: a good command after it works.
        NetControl.EncodePairsSet(command, 3);
        Assert.Equal(NetControl.Ok, rig.Send(command));
        Assert.Equal([3], rig.Applied);
        rig.AssertHealthy();
    }

    [Fact]
    public void MalformedControlCommandsAreAnsweredErrOrCompletedEmptyWithoutACrash()
    {
        using var rig = new ControlRig(maxPairs: 4);
        Assert.Equal(NetControl.Err, rig.Send([NetControl.ClassMq, NetControl.CommandVqPairsSet]));   // no pair count
        Assert.Equal(NetControl.Err, rig.Send([0, 0, 2, 0]));                                          // rx-mode class, not offered
        Assert.Equal(NetControl.Err, rig.Send([NetControl.ClassMq, 1, 2, 0]));                         // RSS config, not offered
        Assert.Equal(NetControl.Err, rig.Send([]));                                                    // nothing readable
        Assert.Null(rig.Send([NetControl.ClassMq, NetControl.CommandVqPairsSet, 2, 0], ackRoom: false)); // nowhere to answer
        Assert.Empty(rig.Applied);
        rig.AssertHealthy();
    }

    /// <summary>Real device and driver net backends of N pairs over an in-process link, each TAP queue a frame pipe.</summary>
    private sealed class MqRig : IDisposable
    {
        private readonly InProcessLink _link = new(64 << 20, vectors: 16);
        private readonly DeviceSideLink _deviceSide;
        private readonly DriverSideLink _driverSide;

        public MqRig(int devicePairs, int driverPairs)
        {
            HostPipes = [.. Enumerable.Range(0, devicePairs).Select(q => new FramePipe($"host{q}"))];
            CardPipes = [.. Enumerable.Range(0, driverPairs).Select(q => new FramePipe($"card{q}"))];
            Device = new NetDeviceBackend(new NetDeviceOptions("net0", "host0", s_mac, 1500, 64, devicePairs), [.. HostPipes.Select(p => p.Tap)], NullLogger.Instance);
            Driver = new NetDriverBackend(new NetDriverOptions("net0", "card0"), [.. CardPipes.Select(p => p.Tap)], NullLogger.Instance);
            _deviceSide = new DeviceSideLink("mq", _link.Device, [Device]);
            _driverSide = new DriverSideLink("mq", _ => _link.Driver, [Driver]);
            _deviceSide.Start();
            _driverSide.Start();
            Wait.Until(() => _driverSide.Up && _deviceSide.IsLive(0), "both ends live");
        }

        public FramePipe[] HostPipes { get; }

        public FramePipe[] CardPipes { get; }

        public NetDeviceBackend Device { get; }

        public NetDriverBackend Driver { get; }

        public ulong Negotiated => _driverSide.NegotiatedOf(0);

        public void Dispose()
        {
            _driverSide.Dispose();
            _deviceSide.Dispose();
            Driver.Dispose(); // closes the pipes' TAP ends
            Device.Dispose();
            foreach (FramePipe p in HostPipes.Concat(CardPipes))
            {
                p.Dispose();
            }

            _link.Dispose();
        }
    }

    /// <summary>
    /// The device side's control queue thread in a guarded window, the test as a hostile driver posting
    /// command chains through a real <see cref="DriverQueue"/>.
    /// </summary>
    private sealed class ControlRig : IDisposable
    {
        private const ulong BufferBase = 0x10000;
        private static readonly SplitRingLayout s_layout = new(16, 0x1000, 0x2000, 0x3000);
        private readonly EventFdDoorbell _kick = new();
        private readonly EventFdDoorbell _interrupt = new();
        private readonly SharedWindow _window = SharedWindow.CreateGuarded(1 << 20);
        private readonly DeviceQueue _device;
        private readonly DriverQueue _driver;
        private readonly NetControlPump _pump;

        public ControlRig(int maxPairs)
        {
            WindowAccessor w = _window.Accessor;
            var buffers = new BufferRegion(BufferBase, (1 << 20) - BufferBase);
            _device = new DeviceQueue(w, s_layout, buffers, true, _interrupt, new QueueStats("ctrl", NetDropReasonNames.All));
            _device.Reset();
            _driver = new DriverQueue(w, s_layout, buffers, true, _kick, new QueueStats("driver-ctrl"));
            var set = new DeviceQueueSet(w, [_device], [_kick], NetFeatures.Offered | NetFeatures.Multiqueue);
            _pump = new NetControlPump("ctl", set, 0, maxPairs, Applied.Add);
            _pump.Start();
        }

        public List<int> Applied { get; } = [];

        /// <summary>Posts <paramref name="command"/> (readable) and a 1-byte ack (writable) unless told not to; the ack, or null for an empty completion.</summary>
        public byte? Send(byte[] command, bool ackRoom = true)
        {
            WindowAccessor w = _window.Accessor;
            command.CopyTo(w.Bytes(BufferBase, command.Length));
            w.Bytes(BufferBase + 64, 1)[0] = 0xEE;
            var segs = new List<BufferSegment>();
            if (command.Length > 0)
            {
                segs.Add(new BufferSegment(BufferBase, (uint)command.Length, false));
            }

            if (ackRoom)
            {
                segs.Add(new BufferSegment(BufferBase + 64, 1, true));
            }

            Assert.True(_driver.TryAdd([.. segs], out _));
            _driver.Publish();
            _kick.Ring();
            UsedElement used = default;
            Wait.Until(() => _driver.TryReap(out used), "the command completed");
            return used.Length == 0 ? null : w.Bytes(BufferBase + 64, 1)[0];
        }

        public void AssertHealthy()
        {
            Assert.Equal(RingErrorKind.None, _pump.Fault);
            Assert.Null(_pump.Crash);
            Assert.Equal(0, _device.Stats.TotalRingErrors);
        }

        public void Dispose()
        {
            _pump.Stop();
            _window.Dispose();
            _kick.Dispose();
            _interrupt.Dispose();
        }
    }
}
