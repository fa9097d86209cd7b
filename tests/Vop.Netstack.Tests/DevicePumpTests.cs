using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Netstack.Tests.Infrastructure;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Tests;

/// <summary>
/// The device-side net pump (one buffer per frame, no MRG_RXBUF) between a frame pipe and real rings in a
/// guarded window, the test playing the driver: split headers, oversize frames both ways, short chains,
/// capture.
/// </summary>
public sealed class DevicePumpTests
{
    private const ulong Features = VirtioFeatures.Version1 | VirtioFeatures.EventIdx | NetFeatures.Csum | NetFeatures.GuestCsum;

    [Fact]
    public void TransmitHeaderSplitAcrossDescriptorsIsGatheredAndValidated()
    {
        using DevicePumpRig rig = new DevicePumpRig(Features).Start();
        byte[] good = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(100, 1));
        rig.PostTx(good, 5, 9); // header in three descriptors: 5 + 4 + 3 bytes
        Assert.Equal(good, rig.Pipe.Receive());

        // NEEDS_CSUM lives in the first descriptor, the csum_start that makes it invalid in the second:
        // only a gathered header sees the whole of it.
        byte[] frame = Frames.Udp(100, 2);
        byte[] bad = Frames.WithHeader(Frames.CsumPastFrameHeader(frame.Length), frame);
        rig.PostTx(bad, 5);
        byte[] after = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(60, 3));
        rig.PostTx(after, 1);
        Assert.Equal(after, rig.Pipe.Receive());
        rig.ReapAllTx();
        Assert.Equal(1, rig.TxStats.Drops[(int)NetDropReason.BadHeader]);
        Assert.Equal(1, rig.TxStats.Drops.Sum());
        Assert.Equal(3, rig.TxStats.Packets);
    }

    [Fact]
    public void TransmitChainShorterThanTheHeaderIsDroppedAsHeaderShort()
    {
        using DevicePumpRig rig = new DevicePumpRig(Features).Start();
        rig.PostTx(new byte[VirtioNetHeader.Size - 1], 4);
        byte[] after = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(60, 4));
        rig.PostTx(after);
        Assert.Equal(after, rig.Pipe.Receive());
        rig.ReapAllTx();
        Assert.Equal(1, rig.TxStats.Drops[(int)NetDropReason.HeaderShort]);
        Assert.Equal(1, rig.TxStats.Drops.Sum());
    }

    [Fact]
    public void ReceiveHeaderSplitAcrossDescriptorsIsScatteredWithNumBuffers()
    {
        using DevicePumpRig rig = new DevicePumpRig(Features).Start();
        // The first descriptor is shorter than the header, and num_buffers (bytes 10, 11) straddles the second and third.
        ushort head = rig.PostRx(4, 7, 2048);
        byte[] sent = Frames.WithHeader(Frames.PlainHeader(0xBEEF), Frames.Udp(1472, 5));
        rig.Pipe.Send(sent);

        (UsedElement used, byte[] bytes) = rig.ReapRx();
        Assert.Equal(head, used.Head);
        Assert.True(used.LengthValid);
        Assert.Equal((uint)sent.Length, used.Length);
        Assert.Equal(Frames.WithNumBuffers(sent, 1), bytes);
        BufferSegment[] segs = rig.RxSegments(head);
        Assert.True(rig.Untouched(segs[2], sent.Length - 11), "bytes past the frame were written");
        Assert.Equal(1, rig.RxStats.Packets);
    }

    [Fact]
    public void OversizeTransmitFromTheDriverIsDroppedAsOversize()
    {
        // MTU 1500 without HOST_TSO: the device takes at most header + 1518 bytes from the driver.
        using DevicePumpRig rig = new DevicePumpRig(Features, mtu: 1500).Start();
        int max = (int)FrameSizes.BufferFor(1500, gsoTowardUs: false);
        byte[] tooBig = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(max - VirtioNetHeader.Size - Frames.EthernetIpUdp + 1, 6));
        byte[] largest = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(max - VirtioNetHeader.Size - Frames.EthernetIpUdp, 7));
        rig.PostTx(tooBig, 1000);
        rig.PostTx(largest, 1000);

        Assert.Equal(largest, rig.Pipe.Receive());
        rig.ReapAllTx();
        Assert.Equal(1, rig.TxStats.Drops[(int)NetDropReason.Oversize]);
        Assert.Equal(1, rig.TxStats.Drops.Sum());
        Assert.Null(rig.Pump.Crash);
    }

    [Fact]
    public void OversizeFrameFromTheTapIsDroppedAndItsBufferReused()
    {
        // The TAP reports a frame longer than the posted chain by its full length (tun_put_user); the
        // cut-off frame must not be completed as if it were whole.
        using DevicePumpRig rig = new DevicePumpRig(Features).Start();
        ushort head = rig.PostRx(256);
        rig.Pipe.Send(Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(400, 8)));
        byte[] fits = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(100, 9));
        rig.Pipe.Send(fits);

        (UsedElement used, byte[] bytes) = rig.ReapRx();
        Assert.True(used.LengthValid, $"used length {used.Length} for a 256-byte buffer");
        Assert.Equal(head, used.Head);
        Assert.Equal(Frames.WithNumBuffers(fits, 1), bytes);
        Assert.Equal(1, rig.RxStats.Drops[(int)NetDropReason.Oversize]);
        Assert.Equal(0, rig.Rx.Stats.RingErrors[(int)RingErrorKind.UsedLen]);
        Assert.Null(rig.Pump.Crash);
    }

    [Fact]
    public void ReceiveChainTooShortForAFrameIsReturnedEmptyAndUntouched()
    {
        using DevicePumpRig rig = new DevicePumpRig(Features).Start();
        ushort shortHead = rig.PostRx(VirtioNetHeader.Size + 59);
        (UsedElement used, _) = rig.ReapRx();
        Assert.Equal(shortHead, used.Head);
        Assert.Equal(0u, used.Length);
        Assert.True(rig.Untouched(rig.RxSegments(shortHead)[0]));
        Assert.Equal(1, rig.RxStats.Drops[(int)NetDropReason.NoBuffer]);

        ushort head = rig.PostRx(2048);
        byte[] sent = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(18, 10));
        rig.Pipe.Send(sent);
        (used, byte[] bytes) = rig.ReapRx();
        Assert.Equal(head, used.Head);
        Assert.Equal(Frames.WithNumBuffers(sent, 1), bytes);
    }

    [Fact]
    public void CaptureMirrorsBothDirectionsOnlyWhileAttached()
    {
        using DevicePumpRig rig = new DevicePumpRig(Features).Start();
        rig.Capture.DeviceIndex = 3;
        CrossBothWays(rig, 20); // before attach: not mirrored
        Assert.Empty(CaptureRecord.DrainAll(rig.Capture));

        rig.Capture.Start();
        (byte[] down, byte[] up) = CrossBothWays(rig, 30);
        List<CaptureRecord> records = CaptureRecord.DrainAll(rig.Capture);
        Assert.Equal(2, records.Count);
        Assert.Equal(Frames.WithNumBuffers(down, 1), records.Single(r => r.Direction == 0).Bytes);
        Assert.Equal(up, records.Single(r => r.Direction == 1).Bytes);
        Assert.All(records, r => Assert.Equal(3, r.DeviceIndex));
        Assert.All(records, r => Assert.True(r.UnixNanoseconds > 0));

        rig.Capture.Stop();
        CrossBothWays(rig, 40);
        Assert.Empty(CaptureRecord.DrainAll(rig.Capture));
        Assert.Equal(0, rig.Capture.Drops);
    }

    /// <summary>One frame TAP → driver and one driver → TAP, both checked; returns them.</summary>
    private static (byte[] Down, byte[] Up) CrossBothWays(DevicePumpRig rig, int seed)
    {
        byte[] down = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(64 + seed, seed));
        byte[] up = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(128 + seed, seed + 1));
        rig.PostRx(2048);
        rig.Pipe.Send(down);
        Assert.Equal(Frames.WithNumBuffers(down, 1), rig.ReapRx().Bytes);
        rig.PostTx(up);
        Assert.Equal(up, rig.Pipe.Receive());
        rig.ReapAllTx();
        return (down, up);
    }
}
