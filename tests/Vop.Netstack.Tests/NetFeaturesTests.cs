using Vop.Links.Transport;
using Vop.Netstack.Tap;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Tests;

public class NetFeaturesTests
{
    [Fact]
    public void OfferIncludesTheOffloadsAndTransportBits()
    {
        ulong f = NetFeatures.Offered;
        Assert.NotEqual(0UL, f & VirtioFeatures.Version1);
        Assert.NotEqual(0UL, f & VirtioFeatures.EventIdx);
        Assert.NotEqual(0UL, f & NetFeatures.HostTso4);
        Assert.NotEqual(0UL, f & NetFeatures.GuestTso6);
        Assert.Equal(0UL, f & NetFeatures.MrgRxbuf);
        Assert.Equal(0UL, f & VirtioFeatures.IndirectDesc);
    }

    [Fact]
    public void TapOffloadsFollowTheReceivingSidesFeatures()
    {
        Assert.Equal(TapInterop.TUN_F_CSUM | TapInterop.TUN_F_TSO4 | TapInterop.TUN_F_TSO6 | TapInterop.TUN_F_TSO_ECN,
            NetFeatures.TapOffloadsTowardDriver(NetFeatures.Offered));
        Assert.Equal(TapInterop.TUN_F_CSUM | TapInterop.TUN_F_TSO4,
            NetFeatures.TapOffloadsTowardDevice(NetFeatures.Csum | NetFeatures.HostTso4));
        Assert.Equal(0u, NetFeatures.TapOffloadsTowardDriver(NetFeatures.GuestTso4)); // TSO needs checksum offload
        Assert.Equal(0u, NetFeatures.TapOffloadsTowardDevice(0));
    }

    [Fact]
    public void ConfigSpaceRoundTrips()
    {
        var c = new NetConfigSpace([0x52, 0x54, 0, 1, 2, 3], true, 9000);
        byte[] b = c.Encode();
        Assert.Equal(NetConfigSpace.Size, b.Length);
        NetConfigSpace d = NetConfigSpace.Decode(b);
        Assert.Equal(c.Mac, d.Mac);
        Assert.True(d.LinkUp);
        Assert.Equal(9000, d.Mtu);
        Assert.Throws<InvalidDataException>(() => NetConfigSpace.Decode(new byte[6]));
    }

    [Theory]
    [InlineData("")]
    [InlineData("sixteen-chars-xx")]
    [InlineData("has space")]
    [InlineData("a/b")]
    [InlineData("..")]
    public void BadTapNamesAreRefusedBeforeAnySyscall(string name)
    {
        ArgumentException e = Assert.Throws<ArgumentException>(() => TapDevice.ValidateName(name));
        Assert.Contains("tap name", e.Message);
    }
}
