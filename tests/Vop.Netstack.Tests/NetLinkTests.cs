using Vop.Links.Devices;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Windows;
using Vop.Links.Stats;
using Vop.Netstack.Tests.Infrastructure;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Tests;

/// <summary>
/// Both real net pumps over a negotiated in-process link, TAPs replaced by SOCK_SEQPACKET pipes: what goes
/// into one end's TAP comes out of the other's, and what must not cross does not.
/// </summary>
public sealed class NetLinkTests
{
    [Fact]
    public void FramesCrossBothWaysByteExactIncludingTsoFrames()
    {
        using var rig = new NetLinkRig();
        Assert.NotEqual(0UL, rig.Negotiated & NetFeatures.GuestTso4);
        Assert.NotEqual(0UL, rig.Negotiated & NetFeatures.HostTso4);
        byte[][] hostToCard =
        [
            Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(18, 1)),            // minimum Ethernet frame
            Frames.WithHeader(Frames.PlainHeader(7), Frames.Udp(1472, 2)),         // full MTU; stale num_buffers
            Frames.WithHeader(Frames.Tso4Header(), Frames.Tcp(60_000, 3)),         // one TSO super-frame
            Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(333, 4)),
        ];
        byte[][] cardToHost =
        [
            Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(1472, 5)),
            Frames.WithHeader(Frames.Tso4Header(), Frames.Tcp(64_000, 6)),
            Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(18, 7)),
        ];

        foreach (byte[] m in hostToCard)
        {
            rig.HostPipe.Send(m);
        }

        foreach (byte[] m in cardToHost)
        {
            rig.CardPipe.Send(m);
        }

        foreach (byte[] m in hostToCard)
        {
            // The device writes num_buffers = 1 (no MRG_RXBUF); every other byte is carried unchanged.
            Assert.Equal(Frames.WithNumBuffers(m, 1), rig.CardPipe.Receive());
        }

        foreach (byte[] m in cardToHost)
        {
            Assert.Equal(m, rig.HostPipe.Receive());
        }

        QueueStats deviceRx = rig.Device.Stats[0];
        QueueStats deviceTx = rig.Device.Stats[1];
        Wait.Until(() => deviceRx.Packets == hostToCard.Length && deviceTx.Packets == cardToHost.Length, "device-side counters");
        Assert.Equal(hostToCard.Sum(m => (long)m.Length), deviceRx.Bytes);
        Assert.Equal(cardToHost.Sum(m => (long)m.Length), deviceTx.Bytes);
        Wait.Until(() => rig.Driver.Stats[0].Packets == hostToCard.Length, "driver-side receive counter");
        foreach (QueueStats s in rig.Device.Stats.Concat(rig.Driver.Stats))
        {
            Assert.Equal(0, s.Drops.Sum());
            Assert.Equal(0, s.TotalRingErrors);
        }

        Assert.Null(rig.Device.Pump!.Crash);
        Assert.Null(rig.Driver.Pump!.Crash);
    }

    [Fact]
    public void CaptureOnBothPumpsMirrorsWhatCrossed()
    {
        using var rig = new NetLinkRig();
        rig.Device.Capture.DeviceIndex = 2;
        rig.Device.Capture.Start();
        rig.Driver.Capture.Start();
        byte[] down = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(200, 11));
        byte[] up = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(900, 12));
        rig.HostPipe.Send(down);
        Assert.Equal(Frames.WithNumBuffers(down, 1), rig.CardPipe.Receive());
        rig.CardPipe.Send(up);
        Assert.Equal(up, rig.HostPipe.Receive());

        // Direction 0 = device to driver, 1 = driver to device, on both ends; the bytes as they lay in the window.
        List<CaptureRecord> device = CaptureRecord.DrainAll(rig.Device.Capture);
        List<CaptureRecord> driver = CaptureRecord.DrainAll(rig.Driver.Capture);
        Assert.Equal(2, device.Count);
        Assert.Equal(2, driver.Count);
        Assert.Equal(Frames.WithNumBuffers(down, 1), device.Single(r => r.Direction == 0).Bytes);
        Assert.Equal(up, device.Single(r => r.Direction == 1).Bytes);
        Assert.Equal(Frames.WithNumBuffers(down, 1), driver.Single(r => r.Direction == 0).Bytes);
        Assert.Equal(up, driver.Single(r => r.Direction == 1).Bytes);
        Assert.All(device, r => Assert.Equal(2, r.DeviceIndex));
    }

    [Fact]
    public void DriverDropsATapFrameLargerThanItsTransmitBufferAsOversize()
    {
        // Without HOST_TSO the driver's transmit buffers hold header + MTU frame (+ VLAN tag): 1530 bytes.
        using var rig = new NetLinkRig(driverAccepts: ~(NetFeatures.HostTso4 | NetFeatures.HostTso6 | NetFeatures.HostEcn));
        uint txBuffer = FrameSizes.BufferFor(1500, gsoTowardUs: false);
        byte[] tooBig = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp((int)txBuffer - VirtioNetHeader.Size - Frames.EthernetIpUdp + 1, 21));
        byte[] largest = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp((int)txBuffer - VirtioNetHeader.Size - Frames.EthernetIpUdp, 22));
        Assert.Equal(txBuffer + 1, (uint)tooBig.Length);
        rig.CardPipe.Send(tooBig);
        rig.CardPipe.Send(largest);

        Assert.Equal(largest, rig.HostPipe.Receive()); // the first to arrive: the oversize one never crossed
        QueueStats driverTx = rig.Driver.Stats[1];
        Wait.Until(() => driverTx.Drops[(int)NetDropReason.Oversize] == 1, "the oversize drop counted by the driver");
        Assert.Equal(1, driverTx.Drops.Sum());
        Assert.Equal(0, rig.Device.Stats[1].Drops.Sum()); // it never reached the ring
        Assert.Null(rig.Driver.Pump!.Crash);
        Assert.Equal(RingErrorKind.None, rig.Driver.Fault);
    }

    [Fact]
    public void HostileDeviceCompletionsNeverReachTheCardTap()
    {
        var device = new ScriptedDevice();
        using var rig = new NetLinkRig(device: device);
        DeviceSession session = device.WaitSession();
        DeviceQueue rx = session.Queues[0];
        WindowAccessor w = session.End.Window.Accessor;

        // 1: a good frame whose header claims 65535 buffers: without MRG_RXBUF the driver uses one and
        //    hands the frame on unchanged (a TAP ignores num_buffers).
        byte[] first = Frames.WithHeader(Frames.PlainHeader(0xFFFF), Frames.Udp(100, 31));
        Complete(rx, w, first, first.Length);
        // 2: a used length beyond the buffer the driver posted.
        Complete(rx, w, first, int.MaxValue);
        // 3: a header the driver side did not negotiate (GSO without NEEDS_CSUM).
        byte[] badGso = Frames.WithHeader(Frames.Tso4Header(), Frames.Tcp(100, 32));
        badGso[0] = 0;
        Complete(rx, w, badGso, badGso.Length);
        // 4: a used length shorter than header + Ethernet header.
        Complete(rx, w, first, VirtioNetHeader.Size + 13);
        byte[] last = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(50, 33));
        Complete(rx, w, last, last.Length);

        Assert.Equal(first, rig.CardPipe.Receive());
        Assert.Equal(last, rig.CardPipe.Receive()); // nothing of 2, 3 and 4 came out in between
        QueueStats driverRx = rig.Driver.Stats[0];
        Wait.Until(() => driverRx.Packets == 5, "five completions reaped");
        Assert.Equal(1, driverRx.RingErrors[(int)RingErrorKind.UsedLen]);
        Assert.Equal(2, driverRx.Drops[(int)NetDropReason.HeaderShort]);
        Assert.Equal(1, driverRx.Drops[(int)NetDropReason.BadHeader]);
        Assert.Equal(RingErrorKind.None, rig.Driver.Fault);
        Assert.Null(rig.Driver.Pump!.Crash);
    }

    /// <summary>Pops the driver's next receive buffer, writes <paramref name="message"/> into it and completes it with <paramref name="usedLength"/>.</summary>
    private static void Complete(DeviceQueue rx, WindowAccessor w, byte[] message, int usedLength)
    {
        DescriptorChain chain = default;
        BufferSegment[] copy = [];
        Wait.Until(
            () =>
            {
                Span<BufferSegment> s = stackalloc BufferSegment[4];
                if (!rx.TryPop(s, out chain))
                {
                    return false;
                }

                copy = s[..chain.SegmentCount].ToArray();
                return true;
            },
            "a receive buffer posted by the driver pump");
        Assert.Single(copy);
        Assert.True(copy[0].Length >= message.Length);
        message.CopyTo(w.Bytes(copy[0].Offset, message.Length));
        rx.PushUsed(chain.Head, (uint)usedLength);
        rx.Publish();
    }

    /// <summary>A device side that only records its session: the test plays the device on its queues.</summary>
    private sealed class ScriptedDevice : IDeviceBackend
    {
        private DeviceSession? _session;

        public string Name => "net0";

        public DeviceType Type => DeviceType.Net;

        public ulong OfferedFeatures => NetFeatures.Offered;

        public byte[] Config => new NetConfigSpace(DevicePumpRig.Mac, true, 1500).Encode();

        public IReadOnlyList<ushort> QueueSizes => [NetLinkRig.QueueSize, NetLinkRig.QueueSize];

        public IReadOnlyList<QueueStats> Stats { get; } = [new QueueStats("rx0", NetDropReasonNames.All), new QueueStats("tx0", NetDropReasonNames.All)];

        public RingErrorKind Fault => RingErrorKind.None;

        public void Start(DeviceSession session) => Volatile.Write(ref _session, session);

        public void Stop()
        {
        }

        public DeviceSession WaitSession()
        {
            Wait.Until(() => Volatile.Read(ref _session) is not null, "the device session");
            return _session!;
        }
    }
}
