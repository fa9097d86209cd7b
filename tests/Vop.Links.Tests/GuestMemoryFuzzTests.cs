using Vop.Links.Rings;
using Vop.Links.VhostUser;
using Vop.Links.Windows;
using Vop.Links.Stats;

namespace Vop.Links.Tests;

/// <summary>
/// A vhost-user guest's memory as vop maps it (regions MAP_FIXED into a PROT_NONE reservation, a hole
/// between them, nothing past the end) under 50,000 hostile descriptor chains aimed at the edges of the
/// regions, the hole and the 64-bit range. Every segment a queue hands out is touched at both ends, as the
/// pump's readv/writev would: one touch in the hole or past the end kills the test host.
/// </summary>
public sealed class GuestMemoryFuzzTests : IDisposable
{
    private const ulong Low = 0xA0000;        // region 0: [0, 640 KiB)
    private const ulong HighGpa = 0x100000;   // region 1: [1 MiB, 2 MiB); [640 KiB, 1 MiB) is a hole
    private const ulong HighSize = 0x100000;
    private const ulong RingGpa = HighGpa + 0x80000;
    private readonly SharedWindow _file = SharedWindow.CreateMemfd("fuzz-guest", Low + HighSize);
    private readonly GuestMemory _memory;

    public GuestMemoryFuzzTests()
    {
        GuestMemoryRegion[] table = [new(0, Low, 0x7000_0000_0000, 0), new(HighGpa, HighSize, 0x7000_0010_0000, Low)];
        _memory = GuestMemory.Map(table, [_file.Fd!, _file.Fd!]);
    }

    public void Dispose()
    {
        _memory.Dispose();
        _file.Dispose();
    }

    [Fact]
    public void DescriptorsAtTheEdgesOfGuestMemoryNeverReachTheHoles()
    {
        var rng = new Random(6_2026);
        WindowAccessor w = _memory.Accessor;
        ulong[] edges = [0, Low - 1, Low, Low + 1, HighGpa - 1, HighGpa, HighGpa + HighSize - 1, HighGpa + HighSize, 0x800000, ulong.MaxValue - 7, 1UL << 63];
        Span<BufferSegment> segs = stackalloc BufferSegment[16];
        int popped = 0;
        int quarantined = 0;
        for (int c = 0; c < 50_000; c++)
        {
            const ushort n = 16;
            var layout = new SplitRingLayout(n, RingGpa, RingGpa + 0x200, RingGpa + 0x400);
            var q = new DeviceQueue(w, layout, new BufferRegion(0, _memory.Size), true, null, new QueueStats("fuzz"), _memory.Regions);
            q.SetBase(0, 0);
            for (int d = 0; d < n; d++)
            {
                ulong baseAddr = edges[rng.Next(edges.Length)];
                long jitter = rng.Next(-4096, 4096);
                ulong addr = unchecked(baseAddr + (ulong)jitter);
                uint len = rng.Next(4) switch { 0 => 0, 1 => (uint)rng.Next(1, 64), 2 => (uint)rng.Next(1, 1 << 20), _ => uint.MaxValue - (uint)rng.Next(8) };
                ushort flags = (ushort)(rng.Next(3) == 0 ? SplitRingLayout.DescFlagNext : 0);
                w.Write(layout.Desc((ushort)d), new VirtqDesc(addr, len, flags, (ushort)rng.Next(n)));
            }

            w.WriteU16(layout.AvailRing, (ushort)rng.Next(n));
            w.WriteU16Release(layout.AvailIdx, 1);
            w.WriteU16(layout.UsedIdx, 0);
            if (q.TryPop(segs, out DescriptorChain chain))
            {
                popped++;
                for (int i = 0; i < chain.SegmentCount; i++)
                {
                    Assert.True(_memory.Regions.Contains(segs[i].Offset, segs[i].Length), $"case {c}: segment 0x{segs[i].Offset:x}+{segs[i].Length} outside guest memory");
                    if (segs[i].Length > 0)
                    {
                        _ = w.ReadU8(segs[i].Offset);
                        _ = w.ReadU8(segs[i].Offset + segs[i].Length - 1);
                    }
                }
            }
            else
            {
                Assert.NotEqual(RingErrorKind.None, q.Fault);
                quarantined++;
            }
        }

        // Both outcomes happened many times: the cases reached the accept path and the refuse path.
        Assert.True(popped > 1000, $"only {popped} chains popped");
        Assert.True(quarantined > 1000, $"only {quarantined} quarantines");
    }
}
