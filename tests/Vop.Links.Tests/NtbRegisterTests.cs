using Vop.Links.Doorbells;
using Vop.Links.Pci;
using Vop.Links.Tests.Infrastructure;
using Vop.Links.Transport;
using Vop.Links.Windows;

namespace Vop.Links.Tests;

/// <summary>
/// The NTB register profile without NTB hardware or root: a file both sides map stands in for the register
/// BAR, side A's peer set register being side B's status register and A's peer scratchpads B's local ones.
/// </summary>
public sealed class NtbRegisterTests : IDisposable
{
    private readonly TempPaths _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static NtbRegisterLayout SideA(int width = 32, int bits = 32, bool emulated = true) =>
        new(PeerSet: 0x00, Status: 0x08, Mask: 0x10, width, bits, LocalScratchpads: 0x40, PeerScratchpads: 0x80, ScratchpadCount: 8, emulated);

    private static NtbRegisterLayout SideB(int width = 32, int bits = 32, bool emulated = true) =>
        new(PeerSet: 0x08, Status: 0x00, Mask: 0x18, width, bits, LocalScratchpads: 0x80, PeerScratchpads: 0x40, ScratchpadCount: 8, emulated);

    private string Block()
    {
        string path = _tmp.File($"regs-{Guid.NewGuid():N}");
        File.WriteAllBytes(path, new byte[8192]);
        return path;
    }

    private static NtbRegisters Open(string path, NtbRegisterLayout layout, ulong offset = 0) => NtbRegisters.Open(new NtbRegisterFile(path, offset, layout));

    [Theory]
    [InlineData(16)]
    [InlineData(32)]
    [InlineData(64)]
    public void EmulatedSetOrsAndClearAndNots(int width)
    {
        string path = Block();
        using NtbRegisters a = Open(path, SideA(width, width));
        using NtbRegisters b = Open(path, SideB(width, width));
        Assert.Equal(0UL, b.ReadStatus());
        a.RingPeer(1UL << 3);
        a.RingPeer(1UL << (width - 1));
        a.RingPeer(1UL << 3);
        Assert.Equal((1UL << 3) | (1UL << (width - 1)), b.ReadStatus());
        Assert.Equal(0UL, a.ReadStatus()); // A's own status is the other register

        b.Clear(1UL << 3); // write-1-to-clear, emulated as AND-NOT: only that bit goes
        Assert.Equal(1UL << (width - 1), b.ReadStatus());
        b.RingPeer(1UL << 1);
        Assert.Equal(1UL << 1, a.ReadStatus());
        b.Clear(ulong.MaxValue);
        Assert.Equal(0UL, b.ReadStatus());
    }

    [Fact]
    public void ConcurrentRingsOfDifferentBitsAreNotLost()
    {
        string path = Block();
        using NtbRegisters a = Open(path, SideA());
        using NtbRegisters a2 = Open(path, SideA());
        using NtbRegisters b = Open(path, SideB());
        for (int round = 0; round < 200; round++)
        {
            Parallel.For(0, 32, bit => (bit % 2 == 0 ? a : a2).RingPeer(1UL << bit));
            Assert.Equal(0xFFFF_FFFFUL, b.ReadStatus());
            Parallel.For(0, 32, bit => b.Clear(1UL << bit));
            Assert.Equal(0UL, b.ReadStatus());
        }
    }

    [Fact]
    public void BitsBeyondTheValidOnesAreNeitherRungNorSeen()
    {
        string path = Block();
        using NtbRegisters a = Open(path, SideA(32, 4));
        using NtbRegisters b = Open(path, SideB(32, 4));
        a.RingPeer(0xF0);
        Assert.Equal(0UL, b.ReadStatus());

        // A peer that sets bits beyond ours (hostile or misconfigured) is masked off, not a crash.
        using (var raw = SharedWindow.OpenFile(path, 0, 4096, create: false))
        {
            raw.Accessor.WriteU32(0x00, 0xFFFF_FFF2);
        }

        Assert.Equal(2UL, b.ReadStatus());
    }

    [Fact]
    public void HardwareRegistersAreWrittenNotReadModifiedWritten()
    {
        string path = Block();
        using var raw = SharedWindow.OpenFile(path, 0, 4096, create: false);
        WindowAccessor r = raw.Accessor;
        r.WriteU16(0x10, 0x8000); // a mask bit someone else owns
        using (NtbRegisters a = Open(path, SideA(16, 15, emulated: false)))
        {
            Assert.Equal(0xFFFF, r.ReadU16(0x10)); // vop masks the bits it polls, keeps the rest

            r.WriteU16(0x00, 0x00F0); // the peer set register reads back whatever: vop must not OR into it
            a.RingPeer(1UL << 2);
            Assert.Equal(1 << 2, r.ReadU16(0x00)); // one store of exactly the bit: the NTB sets it at the peer

            r.WriteU16(0x08, 0x0013); // status: bits 0, 1, 4 rung
            Assert.Equal(0x13UL, a.ReadStatus());
            a.Clear(0x12);
            Assert.Equal(0x12, r.ReadU16(0x08)); // write-1-to-clear: the bits to clear are what is written
        }

        Assert.Equal(0x8000, r.ReadU16(0x10)); // the mask is put back as it was
    }

    [Fact]
    public void VectorsShareBitsAndTheWokenSideWakesEveryQueueOnTheBit()
    {
        string path = Block();
        const int vectors = 5;
        using var a = new NtbNotifier(Open(path, SideA(32, 2)), deviceSide: true, vectors, 1 << 20);
        using var b = new NtbNotifier(Open(path, SideB(32, 2)), deviceSide: false, vectors, 1 << 20);
        var local = new EventFdDoorbell[vectors];
        for (int v = 0; v < vectors; v++)
        {
            local[v] = new EventFdDoorbell();
        }

        try
        {
            Doorbell[] ring = [.. Enumerable.Range(0, vectors).Select(a.NewPeerDoorbell)];
            Assert.Equal([1UL, 2UL, 1UL, 2UL, 1UL], ring.Select(d => ((NtbRegisterDoorbell)d).Bit));
            Assert.False(b.Poll(local));

            ring[3].Ring(); // bit 1: vectors 1 and 3 share it
            Assert.True(b.Poll(local));
            Assert.Equal([0UL, 1UL, 0UL, 1UL, 0UL], local.Select(d => d.Drain()));
            Assert.False(b.Poll(local)); // taken and cleared

            ring[0].Ring();
            ring[4].Ring();
            Assert.True(b.Poll(local));
            Assert.Equal([1UL, 0UL, 1UL, 0UL, 1UL], local.Select(d => d.Drain()));
        }
        finally
        {
            foreach (EventFdDoorbell d in local)
            {
                d.Dispose();
            }
        }
    }

    [Fact]
    public void ScratchpadHandshakeMatchesOnlyTheExpectedPeer()
    {
        string path = Block();
        using NtbRegisters a = Open(path, SideA());
        using NtbRegisters b = Open(path, SideB());
        var device = new NtbIdentity(DeviceSide: true, Vectors: 16, DoorbellBits: 32, WindowSize: 64UL << 20, Epoch: 0x1234);
        var driver = device with { DeviceSide = false, Epoch = 0x99 };
        Assert.Equal(NtbPeerState.NotYet, NtbHandshake.Check(NtbHandshake.Read(b), driver, 0x1234, out _));

        NtbHandshake.Publish(a, device);
        Assert.Equal(NtbPeerState.Matches, NtbHandshake.Check(NtbHandshake.Read(b), driver, 0x1234, out string? why));
        Assert.Null(why);
        Assert.Equal(NtbPeerState.EpochDiffers, NtbHandshake.Check(NtbHandshake.Read(b), driver, 0x4321, out why));
        Assert.Contains("not the same NTB's", why);

        // What the driver side reads is what the device side wrote; every field is checked.
        Assert.Contains("the peer is device side; this end is the device side", Mismatch(device with { Epoch = 0x99 }, device));
        Assert.Contains("16 vectors; this end has 8", Mismatch(device, driver with { Vectors = 8 }));
        Assert.Contains("32 doorbell bits; this end uses 16", Mismatch(device, driver with { DoorbellBits = 16 }));
        Assert.Contains("65536 KiB; this end's is 32768 KiB", Mismatch(device, driver with { WindowSize = 32UL << 20 }));

        string Mismatch(NtbIdentity published, NtbIdentity reader)
        {
            NtbHandshake.Publish(a, published);
            Assert.Equal(NtbPeerState.Mismatch, NtbHandshake.Check(NtbHandshake.Read(b), reader, published.Epoch, out string? w));
            return w!;
        }
    }

    [Fact]
    public void HostileScratchpadsAreRefusedNeverThrown()
    {
        var me = new NtbIdentity(DeviceSide: false, Vectors: 16, DoorbellBits: 32, WindowSize: 64UL << 20, Epoch: 1);
        var random = new Random(14);
        for (int i = 0; i < 100_000; i++)
        {
            (uint, uint, uint, uint) spads = ((uint)random.NextInt64(), (uint)random.NextInt64(), (uint)random.NextInt64(), (uint)random.NextInt64());
            if (i % 3 == 0)
            {
                spads.Item1 = NtbHandshake.Magic;
            }

            NtbPeerState state = NtbHandshake.Check(spads, me, (uint)random.NextInt64(), out string? why);
            Assert.True(state == NtbPeerState.NotYet || why is not null);
            Assert.DoesNotContain('\n', why ?? string.Empty);
        }

        Assert.Equal(NtbPeerState.Mismatch, NtbHandshake.Check((0xDEADBEEF, 0, 0, 0), me, 0, out string? line));
        Assert.Equal("scratchpad 0 reads 0xdeadbeef, not vop's magic 0x4e504f56: these registers are not a vop peer's", line);
    }

    [Fact]
    public void NotifierReportsAMismatchOnceAndItsEndOnce()
    {
        string path = Block();
        var reports = new List<string?>();
        using var a = new NtbNotifier(Open(path, SideA()), deviceSide: true, 16, 1 << 20);
        using var b = new NtbNotifier(Open(path, SideB()), deviceSide: false, 16, 1 << 20, reports.Add);
        var device = new SideSnapshot(SideState.Running, 0x77, 1);
        long now = 1_000_000;
        Assert.False(a.PeerMatches(0x77, default, peerAlive: false, now)); // publishes A's scratchpads
        Assert.True(b.PeerMatches(0x55, device, peerAlive: true, now));
        Assert.Empty(reports);

        // A wrong magic: refused at once, said once however often it is looked at.
        using (var raw = SharedWindow.OpenFile(path, 0, 4096, create: false))
        {
            raw.Accessor.WriteU32(0x80, 0x0BADF00D);
            for (int i = 1; i <= 10; i++)
            {
                Assert.False(b.PeerMatches(0x55, device, peerAlive: true, now + (100 * i)));
            }

            Assert.Equal(["scratchpad 0 reads 0x0badf00d, not vop's magic 0x4e504f56: these registers are not a vop peer's"], reports);
            raw.Accessor.WriteU32(0x80, NtbHandshake.Magic);
        }

        Assert.True(b.PeerMatches(0x55, device, peerAlive: true, now + 2000));
        Assert.Equal(2, reports.Count);
        Assert.Null(reports[1]);

        // The peer restarted (new epoch in its state block) and has not republished yet: a grace period, then a refusal.
        var restarted = device with { Epoch = 0x78 };
        Assert.False(b.PeerMatches(0x55, restarted, peerAlive: true, now + 3000));
        Assert.False(b.PeerMatches(0x55, restarted, peerAlive: true, now + 3500));
        Assert.Equal(2, reports.Count);
        Assert.False(b.PeerMatches(0x55, restarted, peerAlive: true, now + 4100));
        Assert.Contains("scratchpad 3 says epoch 0x00000077", reports[^1]);
        Assert.False(a.PeerMatches(0x78, default, peerAlive: false, now + 4200)); // A republishes with its new epoch
        Assert.True(b.PeerMatches(0x55, restarted, peerAlive: true, now + 4300));
        Assert.Null(reports[^1]);
    }
}
