using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Windows;

namespace Vop.Links.Tests;

/// <summary>
/// What the driver side refuses at discovery (docs/wire-format.md "Validation"): one fact per rule, each
/// refusal one line naming slot, queue and the problem, in a guarded window so a stray read kills the host.
/// </summary>
public sealed class DiscoveryValidationTests : IDisposable
{
    private const int Vectors = 16;
    private const ulong Features = VirtioFeatures.Version1 | VirtioFeatures.EventIdx;
    private readonly SharedWindow _window = SharedWindow.CreateGuarded(1 << 20);
    private readonly WindowGeometry _geometry;
    private readonly RingAreaAllocator _rings;

    public DiscoveryValidationTests()
    {
        _geometry = WindowHeader.Initialize(_window.Accessor, 64 * 1024);
        _rings = new RingAreaAllocator(_geometry);
    }

    public void Dispose() => _window.Dispose();

    private WindowAccessor W => _window.Accessor;

    private void Insert(int slot, SplitRingLayout[] queues, ushort[] vectors) =>
        new DeviceSlot(W, slot, DeviceType.Net, Features, queues, vectors).Insert([1, 2, 3]);

    /// <summary>A well-placed queue with its desc table moved to <paramref name="desc"/>.</summary>
    private SplitRingLayout MovedDesc(ulong desc)
    {
        SplitRingLayout l = _rings.Allocate(16);
        return l with { DescOffset = desc };
    }

    private string Refused(int slot)
    {
        Assert.Null(DriverSlot.TryDiscover(W, _geometry, slot, Vectors, out string? error));
        Assert.NotNull(error);
        Assert.DoesNotContain('\n', error);
        return error;
    }

    private DriverSlot Accepted(int slot)
    {
        DriverSlot? s = DriverSlot.TryDiscover(W, _geometry, slot, Vectors, out string? error);
        Assert.Null(error);
        return Assert.IsType<DriverSlot>(s);
    }

    [Fact]
    public void LayoutOfTheRealDeviceSideIsAccepted()
    {
        // As DeviceSideLink.LayOut: one allocator over the ring area, vectors 1, 2, ... in table order.
        ushort vector = 1;
        int[][] sizes = [[256, 256], [64, 64, 64, 64, 64, 64], [512, 512]];
        for (int d = 0; d < sizes.Length; d++)
        {
            var queues = new SplitRingLayout[sizes[d].Length];
            var vectors = new ushort[queues.Length];
            for (int q = 0; q < queues.Length; q++)
            {
                queues[q] = _rings.Allocate((ushort)sizes[d][q]);
                vectors[q] = vector++;
            }

            Insert(d, queues, vectors);
        }

        DriverSlot[] slots = [Accepted(0), Accepted(1), Accepted(2)];
        Assert.Null(DriverSlot.CheckDisjoint(slots));
        Assert.Equal(new ushort[] { 9, 10 }, slots[2].Vectors);
    }

    [Fact]
    public void DuplicateVectorInOneDeviceIsRefused()
    {
        Insert(0, [_rings.Allocate(16), _rings.Allocate(16)], [3, 3]);
        Assert.Equal("slot 0 queue 1: vector 3 is also queue 0's", Refused(0));
    }

    [Fact]
    public void VectorZeroIsRefused()
    {
        Insert(1, [_rings.Allocate(16), _rings.Allocate(16)], [1, 0]);
        Assert.Equal("slot 1 queue 1: vector 0 is the control vector, not a queue's", Refused(1));
    }

    [Fact]
    public void VectorAtTheLinksVectorCountIsRefused()
    {
        Insert(0, [_rings.Allocate(16)], [Vectors]);
        Assert.Equal($"slot 0 queue 0: vector {Vectors} is not below {Vectors}", Refused(0));
    }

    [Theory]
    [InlineData(0x0UL, ", over the window header (0x0..0x40)")]
    [InlineData(0x40UL, ", over the side state blocks (0x40..0xc0)")]
    [InlineData(0x80UL, ", over the side state blocks (0x40..0xc0)")]
    [InlineData(0x200UL, ", over the doorbell counters (0x200..0x400)")]
    [InlineData(0x300UL, ", over the doorbell counters (0x200..0x400)")]
    [InlineData(0x1000UL, ", over the device table (0x1000..0x3000)")]
    [InlineData(0x2F80UL, ", over the device table (0x1000..0x3000)")] // straddles the table's end into the ring area
    [InlineData(0x400UL, "")] // the unused gap below the table: still not the ring area
    public void QueueOutsideTheRingAreaIsRefused(ulong desc, string over)
    {
        Insert(0, [_rings.Allocate(16), MovedDesc(desc)], [1, 2]);
        Assert.Equal($"slot 0 queue 1: desc at 0x{desc:x} lies outside the ring area 0x3000..0x13000{over}", Refused(0));
    }

    [Fact]
    public void QueueOverTheBufferRegionIsRefused()
    {
        SplitRingLayout l = _rings.Allocate(16) with { UsedOffset = _geometry.Buffers.Offset + 0x40 };
        Insert(0, [l], [1]);
        Assert.Equal($"slot 0 queue 0: used at 0x{_geometry.Buffers.Offset + 0x40:x} overlaps the buffer region", Refused(0));
    }

    [Fact]
    public void QueueStraddlingTheRingAreaEndIsRefused()
    {
        // Leave a gap between ring area and buffers, so only the ring-area rule catches it.
        ulong ringEnd = _geometry.RingAreaOffset + _geometry.RingAreaSize;
        W.WriteU64(WindowLayout.HeaderBufferOffset, ringEnd + 0x1000);
        W.WriteU64(WindowLayout.HeaderBufferSize, _geometry.WindowSize - ringEnd - 0x1000);
        Assert.Null(WindowHeader.TryRead(W, out WindowGeometry g));
        SplitRingLayout l = _rings.Allocate(16) with { DescOffset = ringEnd - 0x40 };
        new DeviceSlot(W, 0, DeviceType.Net, Features, [l], [1]).Insert([]);
        Assert.Null(DriverSlot.TryDiscover(W, g, 0, Vectors, out string? error));
        Assert.Equal($"slot 0 queue 0: desc at 0x{ringEnd - 0x40:x} lies outside the ring area 0x3000..0x{ringEnd:x}", error);
    }

    [Fact]
    public void QueueNearTheTopOfTheAddressSpaceIsRefusedWithoutWrapping()
    {
        Insert(0, [_rings.Allocate(16), MovedDesc(ulong.MaxValue - 15)], [1, 2]);
        Assert.Equal($"slot 0 queue 1: desc at 0x{ulong.MaxValue - 15:x} is outside the window", Refused(0));
    }

    [Fact]
    public void OverlappingQueuesInOneDeviceAreRefused()
    {
        SplitRingLayout a = _rings.Allocate(16);
        SplitRingLayout b = _rings.Allocate(16) with { UsedOffset = a.AvailOffset + 0x10 };
        Insert(0, [a, b], [1, 2]);
        Assert.Equal($"slot 0 queue 1: used at 0x{b.UsedOffset:x} overlaps queue 0's avail at 0x{a.AvailOffset:x}", Refused(0));
    }

    [Fact]
    public void OverlappingQueuesAcrossTwoDevicesAreRefused()
    {
        SplitRingLayout a = _rings.Allocate(64);
        SplitRingLayout b = _rings.Allocate(64);
        Insert(0, [a], [1]);
        Insert(3, [b with { DescOffset = a.UsedOffset }], [2]);
        DriverSlot[] slots = [Accepted(0), Accepted(3)];
        Assert.Equal($"slot 3 queue 0: desc at 0x{a.UsedOffset:x} overlaps slot 0 queue 0's used at 0x{a.UsedOffset:x}", DriverSlot.CheckDisjoint(slots));

        // Blame goes to the later slot of the session's order, whichever sits lower in the window.
        Assert.StartsWith("slot 0 queue 0: used", DriverSlot.CheckDisjoint([slots[1], slots[0]]));
    }

    [Fact]
    public void SharedVectorAcrossTwoDevicesIsRefused()
    {
        Insert(0, [_rings.Allocate(16), _rings.Allocate(16)], [1, 2]);
        Insert(1, [_rings.Allocate(16)], [2]);
        Assert.Equal("slot 1 queue 0: vector 2 is also slot 0 queue 1's", DriverSlot.CheckDisjoint([Accepted(0), Accepted(1)]));
    }

    [Fact]
    public void OversizedConfigSpaceIsRefused()
    {
        Insert(0, [_rings.Allocate(16)], [1]);
        W.WriteU16(WindowLayout.Slot(0) + WindowLayout.SlotConfigSize, (ushort)(WindowLayout.MaxConfigSize + 1));
        Assert.Equal($"slot 0: config size {WindowLayout.MaxConfigSize + 1} exceeds {WindowLayout.MaxConfigSize}", Refused(0));
    }

    [Theory]
    [InlineData(WindowLayout.HeaderRingAreaOffset, 0x2000UL, "ring area at 0x2000 starts inside the device table")]
    [InlineData(WindowLayout.HeaderRingAreaOffset, 0x0UL, "ring area at 0x0 starts inside the device table or before it")]
    [InlineData(WindowLayout.HeaderRingAreaOffset, 0x3040UL, "ring area at 0x3040 is not 4096-byte aligned")]
    [InlineData(WindowLayout.HeaderRingAreaOffset, 0xFFFFFFFFFFFFF000UL, "ring area at 0xfffffffffffff000 of 0x10000 bytes lies outside the window")]
    [InlineData(WindowLayout.HeaderRingAreaSize, 0xFFFFFFFFFFFFF000UL, "ring area at 0x3000 of 0xfffffffffffff000 bytes lies outside the window")]
    [InlineData(WindowLayout.HeaderBufferOffset, 0x12000UL, "buffer region at 0x12000 starts before the ring area ends (0x13000)")]
    [InlineData(WindowLayout.HeaderBufferOffset, 0x1000UL, "buffer region at 0x1000 starts before the ring area ends")]
    [InlineData(WindowLayout.HeaderBufferSize, 0UL, "buffer region is empty")]
    [InlineData(WindowLayout.HeaderBufferSize, 0xED001UL, "buffer region at 0x13000 of 0xed001 bytes lies outside the window")]
    [InlineData(WindowLayout.HeaderBufferOffset, ulong.MaxValue, "buffer region at 0xffffffffffffffff of 0xed000 bytes lies outside the window")]
    public void HostileHeaderIsRefused(ulong field, ulong value, string expected)
    {
        W.WriteU64(field, value);
        Assert.StartsWith(expected, WindowHeader.TryRead(W, out WindowGeometry g));
        Assert.Equal(default(WindowGeometry), g);
    }

    [Fact]
    public void HeaderWithAGapBeforeTheBuffersIsAccepted()
    {
        // Nothing requires the buffers to follow the ring area at once, or to reach the window's end.
        W.WriteU64(WindowLayout.HeaderBufferOffset, 0x20000);
        W.WriteU64(WindowLayout.HeaderBufferSize, 0x1000);
        Assert.Null(WindowHeader.TryRead(W, out WindowGeometry g));
        Assert.Equal(new BufferRegion(0x20000, 0x1000), g.Buffers);
    }
}
