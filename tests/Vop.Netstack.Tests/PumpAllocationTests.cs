using Vop.Links.Transport;
using Vop.Netstack.Tests.Infrastructure;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Tests;

/// <summary>
/// The device pump's steady state over the frame pipe allocates nothing on its thread: PumpThread's own
/// accounting (bytes allocated after the first 1,000 busy loops), read after the thread has ended.
/// </summary>
public sealed class PumpAllocationTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DevicePumpSteadyStateAllocatesNothing(bool mergeable)
    {
        ulong features = VirtioFeatures.Version1 | VirtioFeatures.EventIdx | NetFeatures.Csum | NetFeatures.GuestCsum | (mergeable ? NetFeatures.MrgRxbuf : 0);
        using DevicePumpRig rig = new DevicePumpRig(features).Start();
        byte[] down = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(1000, 1));
        byte[] up = Frames.WithHeader(Frames.PlainHeader(), Frames.Udp(1200, 2));
        byte[] downSeen = Frames.WithNumBuffers(down, 1);
        long rounds = 0;
        while (rig.Pump.BusyLoops < 3000)
        {
            Assert.True(rounds++ < 100_000, $"only {rig.Pump.BusyLoops} busy loops after {rounds} rounds");
            rig.PostRx(2048);
            rig.Pipe.Send(down);
            Assert.Equal(downSeen, rig.ReapRx().Bytes);
            rig.PostTx(up, 6);
            Assert.Equal(up, rig.Pipe.Receive());
            rig.ReapAllTx();
        }

        rig.Pump.Stop();
        Assert.Null(rig.Pump.Crash);
        Assert.True(rig.Pump.AllocatedAfterWarmup >= 0, "never warm");
        Assert.Equal(0, rig.Pump.AllocatedAfterWarmup);
        Assert.Equal(0, rig.RxStats.Drops.Sum() + rig.TxStats.Drops.Sum());
    }

    /// <summary>
    /// TUN mode: the same steady state with the Ethernet header added in place and stripped by the gather
    /// list, and an ARP request answered every round (the answer goes out through the receive queue).
    /// </summary>
    [Fact]
    public void DevicePumpInTunModeAllocatesNothingAfterWarmup()
    {
        ulong features = VirtioFeatures.Version1 | VirtioFeatures.EventIdx | NetFeatures.Csum | NetFeatures.GuestCsum;
        using DevicePumpRig rig = new DevicePumpRig(features, tun: Tun.TunAddresses.ForDevice(DevicePumpRig.Mac)).Start();
        byte[] own = [0x02, 0, 0, 0, 0, 0xFE];
        byte[] frameDown = Frames.Udp(1000, 1);
        byte[] down = Frames.WithHeader(Frames.PlainHeader(), frameDown.AsSpan(14));
        byte[] frameUp = Frames.Udp(1200, 2);
        own.CopyTo(frameUp, 0);
        byte[] up = Frames.WithHeader(Frames.PlainHeader(), frameUp);
        byte[] upSeen = Frames.WithHeader(Frames.PlainHeader(), frameUp.AsSpan(14));
        byte[] arp = Frames.WithHeader(Frames.PlainHeader(), Convert.FromHexString(
            "ffffffffffff" + "020000000001" + "0806" + "0001080006040001" + "020000000001" + "0a000001" + "000000000000" + "0a000002"));
        long rounds = 0;
        while (rig.Pump.BusyLoops < 3000)
        {
            Assert.True(rounds++ < 100_000, $"only {rig.Pump.BusyLoops} busy loops after {rounds} rounds");
            rig.PostRx(2048);
            rig.Pipe.Send(down);
            byte[] seen = rig.ReapRx().Bytes;
            Assert.Equal(down.Length + 14, seen.Length);
            Assert.Equal(own, seen[18..24]);
            rig.PostTx(up, 6);
            Assert.Equal(upSeen, rig.Pipe.Receive());
            rig.ReapAllTx();
            rig.PostRx(2048);
            rig.PostTx(arp);
            Assert.Equal(new byte[] { 0x08, 0x06 }, rig.ReapRx().Bytes[24..26]); // the ARP reply
            rig.ReapAllTx();
        }

        rig.Pump.Stop();
        Assert.Null(rig.Pump.Crash);
        Assert.True(rig.Pump.AllocatedAfterWarmup >= 0, "never warm");
        Assert.Equal(0, rig.Pump.AllocatedAfterWarmup);
        Assert.Equal(0, rig.RxStats.Drops.Sum() + rig.TxStats.Drops.Sum());
    }
}
