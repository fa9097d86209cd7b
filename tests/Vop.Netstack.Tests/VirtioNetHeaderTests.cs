using System.Buffers.Binary;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Tests;

/// <summary>Header validation: what may reach a TAP from the peer (hardening case 14).</summary>
public class VirtioNetHeaderTests
{
    private static byte[] Header(byte flags = 0, byte gso = 0, ushort hdrLen = 0, ushort gsoSize = 0, ushort csumStart = 0, ushort csumOffset = 0)
    {
        var h = new byte[12];
        h[0] = flags;
        h[1] = gso;
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(2), hdrLen);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(4), gsoSize);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(6), csumStart);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(8), csumOffset);
        return h;
    }

    private static HeaderVerdict Check(byte[] h, ulong len = 1514, bool csum = true, bool tso = true) =>
        VirtioNetHeader.Validate(h, len, csum, tso, tso, tso);

    [Fact]
    public void PlainFrameIsOk() => Assert.Equal(HeaderVerdict.Ok, Check(Header()));

    [Fact]
    public void PartialChecksumWithinTheFrameIsOk() =>
        Assert.Equal(HeaderVerdict.Ok, Check(Header(VirtioNetHeader.FlagNeedsCsum, csumStart: 34, csumOffset: 16)));

    [Fact]
    public void ChecksumBeyondTheFrameIsRefused() =>
        Assert.Equal(HeaderVerdict.BadCsum, Check(Header(VirtioNetHeader.FlagNeedsCsum, csumStart: 1500, csumOffset: 16)));

    [Fact]
    public void ChecksumOffloadNotNegotiatedIsRefused() =>
        Assert.Equal(HeaderVerdict.BadFlags, Check(Header(VirtioNetHeader.FlagNeedsCsum, csumStart: 34, csumOffset: 16), csum: false));

    [Fact]
    public void UnknownFlagsAreRefused() => Assert.Equal(HeaderVerdict.BadFlags, Check(Header(flags: 0x10)));

    [Fact]
    public void TsoFrameIsOkWhenNegotiated() =>
        Assert.Equal(HeaderVerdict.Ok, Check(Header(VirtioNetHeader.FlagNeedsCsum, VirtioNetHeader.GsoTcpV4, 66, 1448, 34, 16), 65000));

    [Theory]
    [InlineData(VirtioNetHeader.GsoTcpV4, 66, 0, true)]        // gso_size 0
    [InlineData(VirtioNetHeader.GsoTcpV4, 9000, 1448, true)]   // hdr_len beyond the frame
    [InlineData(3, 66, 1448, true)]                            // UDP (UFO) is not offered
    [InlineData(0x77, 66, 1448, true)]                         // unknown type
    [InlineData(VirtioNetHeader.GsoTcpV6, 66, 1448, false)]    // TSO not negotiated
    public void BadGsoIsRefused(byte gso, ushort hdrLen, ushort gsoSize, bool tso) =>
        Assert.Equal(HeaderVerdict.BadGso, Check(Header(VirtioNetHeader.FlagNeedsCsum, gso, hdrLen, gsoSize, 34, 16), 5000, tso: tso));

    [Fact]
    public void GsoWithoutPartialChecksumIsRefused() =>
        Assert.Equal(HeaderVerdict.BadGso, Check(Header(0, VirtioNetHeader.GsoTcpV4, 66, 1448), 5000));

    [Fact]
    public void EcnBitAloneIsRefused() => Assert.Equal(HeaderVerdict.BadGso, Check(Header(gso: VirtioNetHeader.GsoEcn)));

    [Fact]
    public void RuntFramesAreShort()
    {
        Assert.Equal(HeaderVerdict.Short, Check(Header(), 13));
        Assert.Equal(HeaderVerdict.Short, VirtioNetHeader.Validate(new byte[8], 100, true, true, true, true));
    }

    [Fact]
    public void RandomHeadersNeverPassWithFieldsOutsideTheFrame()
    {
        var rng = new Random(5);
        var h = new byte[12];
        for (int i = 0; i < 200_000; i++)
        {
            rng.NextBytes(h);
            ulong len = (ulong)rng.Next(0, 70000);
            if (Check(h, len) != HeaderVerdict.Ok)
            {
                continue;
            }

            ushort csumStart = BinaryPrimitives.ReadUInt16LittleEndian(h.AsSpan(6));
            ushort csumOffset = BinaryPrimitives.ReadUInt16LittleEndian(h.AsSpan(8));
            Assert.True((h[0] & 1) == 0 || csumStart + csumOffset + 2 <= (long)len);
            Assert.True(h[1] == 0 || BinaryPrimitives.ReadUInt16LittleEndian(h.AsSpan(2)) <= (long)len);
            Assert.True((h[0] & ~3) == 0);
        }
    }
}
