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
}
