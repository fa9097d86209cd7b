using Vop.Links.Rings;
using Vop.Links.Tests.Infrastructure;
using Vop.Links.Windows;
using Vop.Links.Stats;

namespace Vop.Links.Tests;

/// <summary>
/// 100,000 random and hostile ring states per run through both roles, in a window fenced by PROT_NONE
/// guard pages (any access outside it kills the test host). The buffer region ends exactly at the upper
/// guard page, and every segment a queue hands out is touched at both ends.
/// </summary>
public sealed class HostileRingFuzzTests : IDisposable
{
    private const ulong WindowSize = 0x10000;
    private static readonly BufferRegion s_region = new(0x1000, WindowSize - 0x1000);
    private readonly SharedWindow _window = SharedWindow.CreateGuarded(WindowSize);

    public void Dispose() => _window.Dispose();

    private static ushort RandomSize(Random rng) => (ushort)(1 << rng.Next(0, 7)); // 1..64

    private static SplitRingLayout Layout(ushort n) => new(n, 0x0, 0x400, 0x800);

    [Fact]
    public void DeviceRoleSurvivesSixtyThousandHostileRings()
    {
        var rng = new Random(20261123);
        WindowAccessor w = _window.Accessor;
        int completed = 0;
        var faults = new Dictionary<RingErrorKind, int>();
        Span<BufferSegment> all = stackalloc BufferSegment[64];
        for (int c = 0; c < 60_000; c++)
        {
            ushort n = RandomSize(rng);
            SplitRingLayout l = Layout(n);
            var q = new DeviceQueue(w, l, s_region, true, null, new QueueStats("fuzz"));
            q.Reset();
            ushort start = rng.Next(4) == 0 ? (ushort)rng.Next(65536) : (ushort)(65536 - rng.Next(1, 4));
            q.SetBase(start, start);
            w.WriteU16(l.UsedIdx, start); // a live ring resumed at `start`, as after vhost-user SET_VRING_BASE
            WriteHostileAvail(w, l, rng, start);

            (List<RingOracle.Chain> expected, RingErrorKind expectedFault) = RingOracle.DevicePops(w, l, s_region, start);
            int capacity = rng.Next(3) switch { 0 => 1, 1 => 4, _ => 64 };
            Span<BufferSegment> segs = all[..capacity];
            int popped = 0;
            while (q.TryPop(segs, out DescriptorChain chain))
            {
                Assert.True(popped < expected.Count, $"case {c}: popped more chains than the oracle allows");
                RingOracle.Chain want = expected[popped];
                Assert.Equal(want.Head, chain.Head);
                Assert.Equal(want.Segments.Count, chain.TotalDescriptors);
                for (int i = 0; i < chain.SegmentCount; i++)
                {
                    Assert.Equal(want.Segments[i], segs[i]);
                    Touch(w, segs[i]);
                }

                q.PushUsed(chain.Head, (uint)Math.Min(chain.WritableLength, uint.MaxValue));
                popped++;
            }

            q.Publish();
            Assert.Equal(expectedFault, q.Fault);
            if (expectedFault == RingErrorKind.None)
            {
                Assert.Equal(expected.Count, popped);
                completed++;
            }
            else
            {
                Assert.Equal(1, q.Stats.RingErrors[(int)expectedFault]);
                faults[expectedFault] = faults.GetValueOrDefault(expectedFault) + 1;
            }

            // The used ring we own now holds exactly what we pushed.
            Assert.Equal((ushort)(start + popped), w.ReadU16(l.UsedIdx));
        }

        // The generator reaches every outcome, or the test proves little.
        Assert.True(completed > 5_000, $"only {completed} clean cases");
        foreach (RingErrorKind k in new[] { RingErrorKind.BadHead, RingErrorKind.BadNext, RingErrorKind.Loop, RingErrorKind.Indirect, RingErrorKind.OutOfWindow, RingErrorKind.AvailJump, RingErrorKind.DescOrder })
        {
            Assert.True(faults.GetValueOrDefault(k) > 50, $"{k} reached only {faults.GetValueOrDefault(k)} times");
        }
    }

    [Fact]
    public void DriverRoleSurvivesFortyThousandHostileUsedRings()
    {
        var rng = new Random(11232026);
        WindowAccessor w = _window.Accessor;
        int clean = 0;
        int badLen = 0;
        var faults = new Dictionary<RingErrorKind, int>();
        Span<BufferSegment> chain = stackalloc BufferSegment[3];
        for (int c = 0; c < 40_000; c++)
        {
            ushort n = RandomSize(rng);
            SplitRingLayout l = Layout(n);
            var q = new DriverQueue(w, l, s_region, true, null, new QueueStats("fuzz"));
            var posted = new Dictionary<ushort, (uint Writable, int Descs)>();
            while (q.FreeDescriptors > 0 && rng.Next(8) != 0)
            {
                int descs = Math.Min(rng.Next(1, 4), q.FreeDescriptors);
                int readable = rng.Next(0, descs + 1); // device-readable descriptors come first
                uint writable = 0;
                for (int i = 0; i < descs; i++)
                {
                    bool wr = i >= readable;
                    uint len = (uint)rng.Next(0, 2048);
                    chain[i] = new BufferSegment(s_region.Offset + (ulong)rng.Next(0, 0x8000), len, wr);
                    writable += wr ? len : 0;
                }

                Assert.True(q.TryAdd(chain[..descs], out ushort head));
                posted[head] = (writable, descs);
            }

            q.Publish();
            int outstanding = posted.Count;

            // The hostile device writes the used ring.
            int delta = rng.Next(10) switch { 0 => rng.Next(65536), 1 => outstanding + 1 + rng.Next(3), _ => rng.Next(0, outstanding + 1) };
            var heads = posted.Keys.ToList();
            for (int k = 0; k < n; k++)
            {
                uint id = rng.Next(8) switch
                {
                    0 => (uint)rng.Next(),
                    1 => (uint)rng.Next(n),
                    _ => heads.Count > 0 ? heads[rng.Next(heads.Count)] : 0u,
                };
                uint len = rng.Next(6) == 0 ? (uint)rng.Next() : (posted.TryGetValue((ushort)Math.Min(id, 65535), out var p) ? (uint)rng.Next(0, (int)p.Writable + 1) : 0u);
                w.Write(l.UsedEntry((ushort)k), new VirtqUsedElem(id, len));
            }

            w.WriteU16(l.UsedIdx, (ushort)delta);

            // Oracle.
            RingErrorKind expectedFault = RingErrorKind.None;
            var expected = new List<UsedElement>();
            var live = new Dictionary<ushort, (uint Writable, int Descs)>(posted);
            if ((ushort)delta > outstanding)
            {
                expectedFault = RingErrorKind.UsedJump;
            }
            else
            {
                for (int k = 0; k < delta; k++)
                {
                    VirtqUsedElem e = w.Read<VirtqUsedElem>(l.UsedEntry((ushort)(k % n)));
                    uint id = e.Id;
                    uint len = e.Len;
                    if (id >= n || !live.Remove((ushort)id, out var p))
                    {
                        expectedFault = RingErrorKind.UsedId;
                        break;
                    }

                    expected.Add(len <= p.Writable ? new UsedElement((ushort)id, len, true) : new UsedElement((ushort)id, 0, false));
                }
            }

            int reaped = 0;
            while (q.TryReap(out UsedElement u))
            {
                Assert.Equal(expected[reaped], u);
                badLen += u.LengthValid ? 0 : 1;
                reaped++;
            }

            Assert.Equal(expected.Count, reaped);
            Assert.Equal(expectedFault, q.Fault);
            int freeExpected = n - live.Values.Sum(p => p.Descs);
            Assert.Equal(freeExpected, q.FreeDescriptors);
            if (expectedFault == RingErrorKind.None)
            {
                clean++;
            }
            else
            {
                faults[expectedFault] = faults.GetValueOrDefault(expectedFault) + 1;
            }
        }

        Assert.True(clean > 5_000, $"only {clean} clean cases");
        Assert.True(badLen > 500, $"used_len reached only {badLen} times");
        Assert.True(faults.GetValueOrDefault(RingErrorKind.UsedId) > 500);
        Assert.True(faults.GetValueOrDefault(RingErrorKind.UsedJump) > 500);
    }

    private static void WriteHostileAvail(in WindowAccessor w, SplitRingLayout l, Random rng, ushort start)
    {
        int n = l.Size;
        for (int i = 0; i < n; i++)
        {
            ulong addr;
            uint len;
            switch (rng.Next(40))
            {
                case 0:
                    addr = (ulong)rng.NextInt64() | ((ulong)rng.Next() << 63);
                    len = (uint)rng.Next();
                    break;
                case 1:
                    addr = ulong.MaxValue - (ulong)rng.Next(0, 16);
                    len = (uint)rng.Next(1, 64);
                    break;
                case 2:
                    addr = s_region.End - (ulong)rng.Next(0, 64);
                    len = (uint)rng.Next(0, 128);
                    break;
                case 3:
                    addr = s_region.Offset - (ulong)rng.Next(1, 64);
                    len = 16;
                    break;
                default:
                    len = (uint)rng.Next(0, 4096);
                    addr = s_region.Offset + (ulong)rng.NextInt64(0, (long)(s_region.Length - len + 1));
                    break;
            }

            int r = rng.Next(100);
            ushort flags = (ushort)((r < 45 ? 1 : 0) | (rng.Next(100) < 40 ? 2 : 0) | (rng.Next(400) == 0 ? 4 : 0));
            ushort next = rng.Next(60) == 0 ? (ushort)rng.Next(n, 65536) : (ushort)rng.Next(n);
            w.Write(l.Desc((ushort)i), new VirtqDesc(addr, len, flags, next));
        }

        for (int k = 0; k < n; k++)
        {
            ushort head = rng.Next(80) == 0 ? (ushort)rng.Next(n, 65536) : (ushort)rng.Next(n);
            w.WriteU16(l.AvailEntry((ushort)k), head);
        }

        int delta = rng.Next(20) switch
        {
            0 => rng.Next(65536),
            1 => n + 1 + rng.Next(0x8000),
            2 => 65535, // idx went backwards by one
            _ => rng.Next(0, Math.Min(n, 4) + 1),
        };
        w.WriteU16(l.AvailIdx, (ushort)(start + delta));
        w.WriteU16(l.UsedEvent, (ushort)rng.Next(65536));
    }

    private static void Touch(in WindowAccessor w, BufferSegment s)
    {
        if (s.Length == 0)
        {
            return;
        }

        // Through the raw address, not the checked accessor: a bad segment must fault on the guard page.
        unsafe
        {
            byte* p = w.Address(s.Offset, s.Length);
            _ = p[0] + p[s.Length - 1];
        }
    }
}
