using Vop.Links.Rings;
using Vop.Links.Windows;
using Vop.Links.Stats;

namespace Vop.Links.Tests;

/// <summary>
/// The adversarial cases of reference/operations-and-hardening.md (b), one by one, against a guarded window;
/// each test is named by what it attacks, with a comment naming the row it covers. Each ends as a quarantine with the
/// named reason (or a counted drop), never an exception. Hostile entries are written through the ring ABI
/// structs (<see cref="VirtqDesc"/>, <see cref="VirtqUsedElem"/>), never by hand-computed offsets.
/// </summary>
public sealed class HostileRingTests : IDisposable
{
    private const ushort N = 8;
    private readonly SharedWindow _window = SharedWindow.CreateGuarded(0x10000);
    private readonly SplitRingLayout _layout = new(N, 0x0, 0x400, 0x800);
    private readonly BufferRegion _region = new(0x1000, 0xF000);
    private readonly DeviceQueue _device;

    public HostileRingTests()
    {
        _device = new DeviceQueue(W, _layout, _region, true, null, new QueueStats("q"));
        _device.Reset();
    }

    private WindowAccessor W => _window.Accessor;

    public void Dispose() => _window.Dispose();

    private void Desc(int i, ulong addr, uint len, ushort flags = 0, ushort next = 0) =>
        W.Write(_layout.Desc((ushort)i), new VirtqDesc(addr, len, flags, next));

    private void Avail(params ushort[] heads)
    {
        for (int k = 0; k < heads.Length; k++)
        {
            W.WriteU16(_layout.AvailEntry((ushort)k), heads[k]);
        }

        W.WriteU16(_layout.AvailIdx, (ushort)heads.Length);
    }

    private RingErrorKind PopAll()
    {
        Span<BufferSegment> segs = stackalloc BufferSegment[N];
        while (_device.TryPop(segs, out DescriptorChain c))
        {
            _device.PushUsed(c.Head, 0);
        }

        return _device.Fault;
    }

    // Hardening table (b) row 1.
    [Fact]
    public void AvailHeadBeyondQueueSize_QuarantinesBadHead()
    {
        Avail(0xFFFF);
        Assert.Equal(RingErrorKind.BadHead, PopAll());
        Assert.Equal(1, _device.Stats.RingErrors[(int)RingErrorKind.BadHead]);
    }

    // Hardening table (b) row 2.
    [Fact]
    public void NextBeyondQueueSize_QuarantinesBadNext()
    {
        Desc(0, 0x1000, 10, SplitRingLayout.DescFlagNext, next: N);
        Avail(0);
        Assert.Equal(RingErrorKind.BadNext, PopAll());
    }

    // Hardening table (b) row 3.
    [Fact]
    public void ChainLoops_QuarantineLoop_AndTheLongestLegalChainIsAccepted()
    {
        Desc(0, 0x1000, 10, SplitRingLayout.DescFlagNext, next: 1);
        Desc(1, 0x2000, 10, SplitRingLayout.DescFlagNext, next: 0);
        Avail(0);
        Assert.Equal(RingErrorKind.Loop, PopAll());

        _device.Reset();
        Desc(3, 0x1000, 0, SplitRingLayout.DescFlagNext, next: 3); // self-loop with len 0
        Avail(3);
        Assert.Equal(RingErrorKind.Loop, PopAll());

        _device.Reset();
        for (int i = 0; i < N; i++)
        {
            Desc(i, 0x1000 + ((ulong)i * 100), 100, (ushort)(i < N - 1 ? SplitRingLayout.DescFlagNext : 0), next: (ushort)(i + 1));
        }

        Avail(0);
        Span<BufferSegment> segs = stackalloc BufferSegment[N];
        Assert.True(_device.TryPop(segs, out DescriptorChain chain));
        Assert.Equal(N, chain.TotalDescriptors);
        Assert.Equal(100UL * N, chain.ReadableLength);
        Assert.Equal(RingErrorKind.None, _device.Fault);
    }

    // Hardening table (b) row 4: indirect descriptors are not negotiated.
    [Fact]
    public void IndirectDescriptor_QuarantinesIndirect()
    {
        Desc(0, 0x1000, VirtqDesc.Size * 4, SplitRingLayout.DescFlagIndirect);
        Avail(0);
        Assert.Equal(RingErrorKind.Indirect, PopAll());
    }

    // Hardening table (b) row 5.
    [Theory]
    [InlineData(0x10000UL, 1u)]              // just past the window
    [InlineData(0xFFF0UL, 0x20u)]            // straddles the end
    [InlineData(0xFFFFFFFFFFFFFFF0UL, 0x20u)] // addr + len wraps 2^64
    [InlineData(0x800UL, 0x10u)]             // inside the window but in the rings, not the buffer region
    public void DescriptorOutsideTheBufferRegion_QuarantinesOutOfWindow(ulong addr, uint len)
    {
        Desc(0, addr, len);
        Avail(0);
        Assert.Equal(RingErrorKind.OutOfWindow, PopAll());
    }

    // Hardening table (b) row 5.
    [Fact]
    public void HugeChainTotals_AreReportedExactlyNotWrapped()
    {
        // N descriptors of 0xF000 bytes each, all overlapping the whole region: legal ranges, sum near 2^19;
        // lengths are accumulated in 64 bits so the caller can drop an oversize chain correctly.
        for (int i = 0; i < N; i++)
        {
            Desc(i, 0x1000, 0xF000, (ushort)(i < N - 1 ? SplitRingLayout.DescFlagNext : 0), next: (ushort)(i + 1));
        }

        Avail(0);
        Span<BufferSegment> segs = stackalloc BufferSegment[2];
        Assert.True(_device.TryPop(segs, out DescriptorChain chain));
        Assert.True(chain.Truncated);
        Assert.Equal(0xF000UL * N, chain.ReadableLength);
    }

    // Hardening table (b) row 6.
    [Theory]
    [InlineData(0x8000)]
    [InlineData(0xFFFF)] // went backwards
    [InlineData(N + 1)]
    public void AvailIndexJump_QuarantinesAvailJump(int idx)
    {
        W.WriteU16(_layout.AvailIdx, (ushort)idx);
        Assert.Equal(0, _device.Available());
        Assert.Equal(RingErrorKind.AvailJump, _device.Fault);
    }

    // Hardening table (b) row 7.
    [Fact]
    public void PeerRewritingDescriptorsDuringPops_NeverTakesTheDeviceOutsideTheRegion()
    {
        for (int i = 0; i < N; i++)
        {
            Desc(i, 0x1000 + ((ulong)i * 0x100), 0x100, (ushort)(i % 2 == 0 ? SplitRingLayout.DescFlagNext : 0), next: (ushort)(i + 1));
        }

        using var stop = new CancellationTokenSource();
        var evil = new Thread(() =>
        {
            var rng = new Random(7);
            while (!stop.IsCancellationRequested)
            {
                int i = rng.Next(N);
                ulong addr = rng.Next(2) == 0 ? 0x1000 + (ulong)rng.Next(0xE000) : (ulong)rng.NextInt64();
                W.Write(_layout.Desc((ushort)i), new VirtqDesc(addr, (uint)rng.Next(0, 0x2000), (ushort)rng.Next(0, 4), (ushort)rng.Next(0, N + 2)));
            }
        })
        { IsBackground = true };
        evil.Start();

        Span<BufferSegment> segs = stackalloc BufferSegment[N];
        int quarantines = 0;
        int chains = 0;
        long deadline = Environment.TickCount64 + 500;
        ushort idx = 0;
        while (Environment.TickCount64 < deadline)
        {
            W.WriteU16(_layout.AvailEntry((ushort)(idx % N)), (ushort)(idx % N));
            W.WriteU16Release(_layout.AvailIdx, ++idx);
            while (_device.TryPop(segs, out DescriptorChain c))
            {
                for (int s = 0; s < c.SegmentCount; s++)
                {
                    Assert.True(_region.Contains(segs[s].Offset, segs[s].Length));
                }

                _device.PushUsed(c.Head, 0);
                chains++;
            }

            if (_device.Fault != RingErrorKind.None)
            {
                Assert.Contains(_device.Fault, new[] { RingErrorKind.OutOfWindow, RingErrorKind.BadNext, RingErrorKind.DescOrder, RingErrorKind.Loop });
                quarantines++;
                _device.Reset();
                idx = 0;
                W.WriteU16(_layout.AvailIdx, 0);
            }
        }

        stop.Cancel();
        evil.Join();
        Assert.True(chains + quarantines > 100);
    }

    // Hardening table (b) row 8.
    [Fact]
    public void PeerScribblingOnTheUsedRing_IsNeverReadBackByTheDevice()
    {
        Desc(0, 0x1000, 10);
        Avail(0);
        Span<BufferSegment> segs = stackalloc BufferSegment[1];
        Assert.True(_device.TryPop(segs, out DescriptorChain c));
        W.WriteU16(_layout.UsedIdx, 0x7777); // the driver scribbles on our used ring
        W.Write(_layout.UsedEntry(0), new VirtqUsedElem(0xFFFFFFFF, 0xFFFFFFFF));
        _device.PushUsed(c.Head, 0);
        _device.Publish();
        Assert.Equal(1, W.ReadU16(_layout.UsedIdx));
        Assert.Equal(new VirtqUsedElem(0, 0), W.Read<VirtqUsedElem>(_layout.UsedEntry(0)));
        Assert.Equal(RingErrorKind.None, _device.Fault);
    }

    // Hardening table (b) row 8.
    [Fact]
    public void UsedIdNotOutstanding_QuarantinesUsedId_AndOverlongUsedLenIsCounted()
    {
        var driver = new DriverQueue(W, _layout, _region, true, null, new QueueStats("q"));
        driver.TryAdd(new BufferSegment(0x1000, 100, true), out ushort h0);
        driver.TryAdd(new BufferSegment(0x2000, 100, true), out ushort h1);
        driver.Publish();

        // Entry 0: length larger than posted -> counted, element invalid, queue healthy.
        W.Write(_layout.UsedEntry(0), new VirtqUsedElem(h0, 101));
        // Entry 1: names h0 again, which is no longer outstanding -> quarantine.
        W.Write(_layout.UsedEntry(1), new VirtqUsedElem(h0, 5));
        W.WriteU16Release(_layout.UsedIdx, 2);

        Assert.True(driver.TryReap(out UsedElement first));
        Assert.False(first.LengthValid);
        Assert.Equal(0u, first.Length);
        Assert.Equal(1, driver.Stats.RingErrors[(int)RingErrorKind.UsedLen]);
        Assert.False(driver.TryReap(out _));
        Assert.Equal(RingErrorKind.UsedId, driver.Fault);
        Assert.Equal(1, driver.Outstanding); // h1 is still ours
        _ = h1;
    }

    // Hardening table (b) row 8.
    [Fact]
    public void UsedIndexAheadOfOutstanding_QuarantinesUsedJump()
    {
        var driver = new DriverQueue(W, _layout, _region, true, null, new QueueStats("q"));
        driver.TryAdd(new BufferSegment(0x1000, 100, true), out _);
        driver.Publish();
        W.WriteU16Release(_layout.UsedIdx, 2);
        Assert.False(driver.TryReap(out _));
        Assert.Equal(RingErrorKind.UsedJump, driver.Fault);
    }

    // Hardening table (b) row 10.
    [Fact]
    public void ResetWithAChainInFlight_ZeroesPrivateIndicesAndTheUsedRing()
    {
        Desc(0, 0x1000, 10);
        Avail(0);
        Span<BufferSegment> segs = stackalloc BufferSegment[1];
        Assert.True(_device.TryPop(segs, out _));
        _device.Reset();
        Assert.Equal(0, _device.InFlight);
        Assert.Equal(0, W.ReadU16(_layout.UsedIdx));
        W.WriteU16(_layout.AvailIdx, 0);
        Assert.Equal(0, _device.Available());
        Assert.Equal(RingErrorKind.None, _device.Fault);
    }

    [Fact]
    public void QuarantineOfOneQueueLeavesItsNeighbourRunning()
    {
        var other = new SplitRingLayout(N, 0xA00 + 0x40, 0xA00 + 0x40 + 0x80, 0xC00);
        var neighbour = new DeviceQueue(W, other, _region, true, null, new QueueStats("q1"));
        neighbour.Reset();
        var neighbourDriver = new DriverQueue(W, other, _region, true, null, new QueueStats("q1"));

        Avail(0xFFFF);
        Assert.Equal(RingErrorKind.BadHead, PopAll());

        neighbourDriver.TryAdd(new BufferSegment(0x5000, 64, false), out _);
        neighbourDriver.Publish();
        Span<BufferSegment> segs = stackalloc BufferSegment[1];
        Assert.True(neighbour.TryPop(segs, out DescriptorChain c));
        neighbour.PushUsed(c.Head, 0);
        neighbour.Publish();
        Assert.True(neighbourDriver.TryReap(out _));
        Assert.Equal(RingErrorKind.None, neighbour.Fault);
        Assert.Equal(RingErrorKind.BadHead, _device.Fault);
    }

    [Fact]
    public void QuarantinedQueueDoesNothingUntilReset()
    {
        Avail(0xFFFF);
        PopAll();
        Desc(0, 0x1000, 10);
        Avail(0);
        Span<BufferSegment> segs = stackalloc BufferSegment[1];
        Assert.False(_device.TryPop(segs, out _));
        Assert.False(_device.EnableNotifications());
        _device.Reset();
        Assert.True(_device.TryPop(segs, out _));
    }
}
