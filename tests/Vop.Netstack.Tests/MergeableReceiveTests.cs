using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Netstack.Tests.Infrastructure;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Tests;

/// <summary>
/// TAP → driver with VIRTIO_NET_F_MRG_RXBUF (MergeableReceiver inside the real device pump): a frame spans
/// small buffers, num_buffers is the device's count whatever the header said before, and hostile buffers
/// cost a counter, never a crash or a byte outside what the driver handed over.
/// </summary>
public sealed class MergeableReceiveTests
{
    private const ulong Features = VirtioFeatures.Version1 | VirtioFeatures.EventIdx | NetFeatures.Csum | NetFeatures.GuestCsum | NetFeatures.MrgRxbuf;

    [Theory]
    [InlineData(0xFFFF)]
    [InlineData(0)]
    [InlineData(2)]
    public void FrameSpansBuffersAndNumBuffersIsTheDevicesCount(int claimed)
    {
        using DevicePumpRig rig = new DevicePumpRig(Features).Start();
        rig.Capture.Start();
        ushort[] heads = [.. Enumerable.Range(0, 8).Select(_ => rig.PostRx(512))];
        byte[] sent = Frames.WithHeader(Frames.PlainHeader((ushort)claimed), Frames.Udp(1472, 1)); // 1526 bytes: 512 + 512 + 502
        rig.Pipe.Send(sent);

        var got = new List<byte>();
        uint[] lengths = [512, 512, 502];
        for (int i = 0; i < 3; i++)
        {
            (UsedElement used, byte[] bytes) = rig.ReapRx();
            Assert.Equal(heads[i], used.Head);
            Assert.True(used.LengthValid);
            Assert.Equal(lengths[i], used.Length);
            got.AddRange(bytes);
        }

        byte[] expected = Frames.WithNumBuffers(sent, 3);
        Assert.Equal(expected, got.ToArray());
        Assert.True(rig.Untouched(rig.RxSegments(heads[2])[0], 502), "bytes past the frame were written");
        Assert.True(rig.Untouched(rig.RxSegments(heads[3])[0]), "a buffer the frame did not need was written");
        List<CaptureRecord> captured = CaptureRecord.DrainAll(rig.Capture);
        Assert.Equal(expected, Assert.Single(captured).Bytes);

        // The next, small frame takes one buffer: num_buffers 1, though the TAP side wrote 65535.
        byte[] small = Frames.WithHeader(Frames.PlainHeader(0xFFFF), Frames.Udp(18, 2));
        rig.Pipe.Send(small);
        (UsedElement next, byte[] smallBytes) = rig.ReapRx();
        Assert.Equal(heads[3], next.Head);
        Assert.Equal(Frames.WithNumBuffers(small, 1), smallBytes);
        Assert.Equal(0, rig.RxStats.Drops.Sum());
        Assert.Equal(0, rig.RxStats.TotalRingErrors);
    }

    [Fact]
    public void BuffersThatCannotStartAFrameAreCountedAndLeftUntouched()
    {
        using DevicePumpRig rig = new DevicePumpRig(Features).Start();
        ushort split = rig.PostRx(8, 504);                                    // header would straddle descriptors
        var readable = new BufferSegment(rig.Allocate(512), 512, false);     // wrong direction for a receive buffer
        ushort wrong = rig.PostRx([readable]);
        ushort[] good = [.. Enumerable.Range(0, 4).Select(_ => rig.PostRx(512))];
        byte[] sent = Frames.WithHeader(Frames.PlainHeader(0xFFFF), Frames.Udp(1472, 3));
        rig.Pipe.Send(sent);

        (UsedElement u0, _) = rig.ReapRx();
        (UsedElement u1, _) = rig.ReapRx();
        Assert.Equal((split, 0u), (u0.Head, u0.Length));
        Assert.Equal((wrong, 0u), (u1.Head, u1.Length));
        var got = new List<byte>();
        for (int i = 0; i < 3; i++)
        {
            (UsedElement used, byte[] bytes) = rig.ReapRx();
            Assert.Equal(good[i], used.Head);
            got.AddRange(bytes);
        }

        Assert.Equal(Frames.WithNumBuffers(sent, 3), got.ToArray());
        Assert.All(rig.RxSegments(split), s => Assert.True(rig.Untouched(s)));
        Assert.True(rig.Untouched(readable));
        Assert.Equal(2, rig.RxStats.Drops[(int)NetDropReason.NoBuffer]);
        Assert.Equal(RingErrorKind.None, rig.Pump.Fault);
    }

    [Fact]
    public void FrameLargerThanTheHeldBuffersIsDroppedAsOversize()
    {
        // 1536 bytes are held (three 512-byte buffers cover header + 1518); the TAP hands over 3012.
        using DevicePumpRig rig = new DevicePumpRig(Features).Start();
        ushort[] heads = [.. Enumerable.Range(0, 8).Select(_ => rig.PostRx(512))];
        rig.Pipe.Send(Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(3000 - Frames.EthernetIpUdp, 4)));
        byte[] small = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(18, 5));
        rig.Pipe.Send(small);

        (UsedElement used, byte[] bytes) = rig.ReapRx();
        Assert.Equal(heads[0], used.Head);
        Assert.Equal(Frames.WithNumBuffers(small, 1), bytes);
        Assert.Equal(1, rig.RxStats.Drops[(int)NetDropReason.Oversize]);
        Assert.Null(rig.Pump.Crash);
        Assert.Equal(RingErrorKind.None, rig.Pump.Fault);
        Assert.Equal(0, rig.Rx.Stats.RingErrors[(int)RingErrorKind.UsedLen]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void DescriptorOutsideTheBufferRegionQuarantinesTheQueueAndTouchesNothing(bool mergeable)
    {
        ulong features = mergeable ? Features : Features & ~NetFeatures.MrgRxbuf;
        using DevicePumpRig rig = new DevicePumpRig(features).Start();
        rig.Pipe.Send(Frames.WithHeader(Frames.PlainHeader(0xFFFF), Frames.Udp(1472, 6)));
        if (mergeable)
        {
            rig.PostRx(512); // not enough for a frame yet: held, nothing read
        }

        // A chain whose address + length wraps 2^64; written behind DriverQueue's back, as a hostile driver would.
        var decoy = new BufferSegment(rig.Allocate(2048), 2048, true);
        ushort head = rig.PostRx([decoy], publish: false);
        rig.W.WriteU64(0x1000 + (16UL * head), 0xFFFF_FFFF_FFFF_F000);
        rig.W.WriteU32(0x1000 + (16UL * head) + 8, 0x2000);
        rig.Rx.Publish();

        Wait.Until(() => rig.Pump.Fault != RingErrorKind.None, "the receive queue quarantined");
        Assert.Equal(RingErrorKind.OutOfWindow, rig.Pump.Fault);
        Assert.Null(rig.Pump.Crash);
        Assert.Equal(1, rig.RxStats.RingErrors[(int)RingErrorKind.OutOfWindow]);
        Assert.False(rig.W.Bytes(DevicePumpRig.BufferBase, (int)(rig.Window.Size - DevicePumpRig.BufferBase)).ContainsAnyExcept(DevicePumpRig.Canary), "the pump wrote into the buffer region");
        Assert.Equal(0, rig.RxStats.Packets);
    }
}
