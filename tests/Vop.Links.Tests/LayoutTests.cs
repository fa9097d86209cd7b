using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Windows;

namespace Vop.Links.Tests;

/// <summary>The window layout is the project's ABI (docs/wire-format.md): pin every offset.</summary>
public class LayoutTests
{
    [Fact]
    public void HeaderAndSlotOffsetsMatchWireFormat()
    {
        Assert.Equal(0x57504F56u, WindowLayout.Magic);
        Assert.Equal(0x08UL, WindowLayout.HeaderWindowSize);
        Assert.Equal(0x30UL, WindowLayout.HeaderBufferSize);
        Assert.Equal(0x40UL, WindowLayout.DeviceSideState);
        Assert.Equal(0x80UL, WindowLayout.DriverSideState);
        Assert.Equal((0x14UL, 0x10000u), (WindowLayout.SideIvshmemPeer, WindowLayout.IvshmemPeerKnown));
        Assert.Equal(0x1000UL, WindowLayout.TableOffset);
        Assert.Equal(0x1400UL, WindowLayout.Slot(1));
        Assert.Equal(0x1000UL + 0x100 + (3 * 0x20), WindowLayout.QueueEntry(0, 3));
        Assert.Equal(0x3000UL, WindowLayout.TableEnd);
        // Driver-owned fields sit past every device-owned field of the slot, on their own cache line.
        Assert.True(WindowLayout.SlotDriverFeatures >= WindowLayout.SlotQueues + (WindowLayout.MaxQueuesPerDevice * (ulong)WindowLayout.QueueEntrySize));
        Assert.Equal(0UL, WindowLayout.SlotDriverFeatures % 64);
    }

    [Fact]
    public void SplitRingSizesFollowVirtio()
    {
        Assert.Equal(16UL * 256, SplitRingLayout.DescBytes(256));
        Assert.Equal(6UL + (2 * 256), SplitRingLayout.AvailBytes(256));
        Assert.Equal(6UL + (8 * 256), SplitRingLayout.UsedBytes(256));
        var l = new SplitRingLayout(8, 0x1000, 0x2000, 0x3000);
        Assert.Equal(0x2002UL, l.AvailIdx);
        Assert.Equal(0x2000UL + 4 + 16, l.UsedEvent);
        Assert.Equal(0x3000UL + 4 + 64, l.AvailEvent);
    }

    [Fact]
    public void RingStructsMatchVirtio()
    {
        // struct virtq_desc: le64 addr, le32 len, le16 flags, le16 next.
        Assert.Equal(16, Unsafe.SizeOf<VirtqDesc>());
        Assert.Equal(16, Marshal.SizeOf<VirtqDesc>());
        Assert.Equal(VirtqDesc.Size, Unsafe.SizeOf<VirtqDesc>());
        Assert.Equal(0, Marshal.OffsetOf<VirtqDesc>(nameof(VirtqDesc.Addr)));
        Assert.Equal(8, Marshal.OffsetOf<VirtqDesc>(nameof(VirtqDesc.Len)));
        Assert.Equal(12, Marshal.OffsetOf<VirtqDesc>(nameof(VirtqDesc.Flags)));
        Assert.Equal(14, Marshal.OffsetOf<VirtqDesc>(nameof(VirtqDesc.Next)));

        // struct virtq_used_elem: le32 id, le32 len.
        Assert.Equal(8, Unsafe.SizeOf<VirtqUsedElem>());
        Assert.Equal(8, Marshal.SizeOf<VirtqUsedElem>());
        Assert.Equal(VirtqUsedElem.Size, Unsafe.SizeOf<VirtqUsedElem>());
        Assert.Equal(0, Marshal.OffsetOf<VirtqUsedElem>(nameof(VirtqUsedElem.Id)));
        Assert.Equal(4, Marshal.OffsetOf<VirtqUsedElem>(nameof(VirtqUsedElem.Len)));

        // virtq_avail / virtq_used: le16 flags, le16 idx, ring[], le16 event; entries 2 and 8 bytes.
        Assert.Equal(0UL, SplitRingLayout.RingFlagsField);
        Assert.Equal(2UL, SplitRingLayout.RingIdxField);
        Assert.Equal(4UL, SplitRingLayout.RingEntriesField);
        Assert.Equal(2UL, SplitRingLayout.AvailEntrySize);
        Assert.Equal(8UL, SplitRingLayout.UsedEntrySize);
        Assert.Equal(16UL, SplitRingLayout.DescEntrySize);
        Assert.Equal(2UL, SplitRingLayout.RingEventSize);
        var l = new SplitRingLayout(8, 0x1000, 0x2000, 0x3000);
        Assert.Equal(0x1000UL + (16 * 5), l.Desc(5));
        Assert.Equal(0x2000UL, l.AvailFlags);
        Assert.Equal(0x2000UL + 4 + (2 * 5), l.AvailEntry(5));
        Assert.Equal(0x3000UL, l.UsedFlags);
        Assert.Equal(0x3002UL, l.UsedIdx);
        Assert.Equal(0x3000UL + 4 + (8 * 5), l.UsedEntry(5));
    }

    [Fact]
    public void TypedReadsAndWritesAreLittleEndianAndBoundsChecked()
    {
        using SharedWindow w = SharedWindow.CreateGuarded(4096);
        WindowAccessor a = w.Accessor;
        a.Write(0x10UL, new VirtqDesc(0x1122334455667788, 0x99AABBCC, 0xDDEE, 0xF00D));
        Assert.Equal(0x1122334455667788UL, a.ReadU64(0x10));
        Assert.Equal(0x99AABBCCu, a.ReadU32(0x18));
        Assert.Equal(0xDDEE, a.ReadU16(0x1C));
        Assert.Equal(0xF00D, a.ReadU16(0x1E));
        Assert.Equal(0x88, a.ReadU8(0x10)); // little-endian on the wire
        Assert.Equal(new VirtqDesc(0x1122334455667788, 0x99AABBCC, 0xDDEE, 0xF00D), a.Read<VirtqDesc>(0x10));
        a.WriteU32(0x20, 7);
        a.WriteU32(0x24, 1500);
        Assert.Equal(new VirtqUsedElem(7, 1500), a.Read<VirtqUsedElem>(0x20));

        // One check covers the whole struct: a descriptor straddling the end is refused, not half read.
        Assert.Equal(new VirtqDesc(0, 0, 0, 0), a.Read<VirtqDesc>(4096 - 16));
        Assert.Throws<WindowAccessException>(() => a.Read<VirtqDesc>(4096 - 15));
        Assert.Throws<WindowAccessException>(() => a.Read<VirtqUsedElem>(4096 - 4));
        Assert.Throws<WindowAccessException>(() => a.Write(ulong.MaxValue - 7, new VirtqDesc(1, 2, 3, 4)));
    }

    [Theory]
    [InlineData(0, 1, 0, true)]      // event 0 passed when idx goes 0 -> 1
    [InlineData(5, 10, 0, true)]
    [InlineData(10, 10, 0, false)]   // event 10 not yet passed at new idx 10
    [InlineData(3, 10, 5, false)]    // event already passed before old
    [InlineData(65535, 2, 65534, true)] // wraps
    public void NeedEventMatchesVringNeedEvent(int ev, int now, int old, bool expected) =>
        Assert.Equal(expected, SplitRingLayout.NeedEvent((ushort)ev, (ushort)now, (ushort)old));

    [Fact]
    public void HeaderRoundTripsAndRejectsASizeMismatch()
    {
        using SharedWindow w = SharedWindow.CreateGuarded(1 << 20);
        WindowAccessor a = w.Accessor;
        Assert.Equal("window header not written yet", WindowHeader.TryRead(a, out _));
        WindowGeometry g = WindowHeader.Initialize(a, 64 * 1024);
        Assert.Null(WindowHeader.TryRead(a, out WindowGeometry read));
        Assert.Equal(g, read);
        a.WriteU64(WindowLayout.HeaderWindowSize, 2 << 20);
        Assert.Contains("mapped", WindowHeader.TryRead(a, out _));
        a.WriteU32(WindowLayout.HeaderMagic, 0xdeadbeef);
        Assert.Contains("bad window magic", WindowHeader.TryRead(a, out _));
    }

    [Fact]
    public void RingLayoutValidationCatchesBadPlacement()
    {
        using SharedWindow w = SharedWindow.CreateGuarded(65536);
        WindowAccessor a = w.Accessor;
        var buffers = new BufferRegion(32768, 32768);
        Assert.Null(new SplitRingLayout(16, 0, 1024, 2048).Validate(a, buffers));
        Assert.Contains("power of two", new SplitRingLayout(12, 0, 1024, 2048).Validate(a, buffers));
        Assert.Contains("misaligned", new SplitRingLayout(16, 8, 1024, 2048).Validate(a, buffers));
        Assert.Contains("overlap each other", new SplitRingLayout(16, 0, 200, 2048).Validate(a, buffers));
        Assert.Contains("buffer region", new SplitRingLayout(16, 0, 1024, 32768).Validate(a, buffers));
        Assert.Contains("outside the window", new SplitRingLayout(16, 0, 1024, 65532).Validate(a, buffers));
    }

    [Theory]
    [InlineData(100UL, 10UL, true)]
    [InlineData(100UL, 900UL, true)]
    [InlineData(100UL, 901UL, false)]
    [InlineData(99UL, 1UL, false)]
    [InlineData(1000UL, 0UL, true)]
    [InlineData(1001UL, 0UL, false)]
    [InlineData(ulong.MaxValue, 2UL, false)]
    [InlineData(200UL, ulong.MaxValue, false)]
    public void BufferRegionContainsIsOverflowSafe(ulong addr, ulong len, bool expected) =>
        Assert.Equal(expected, new BufferRegion(100, 900).Contains(addr, len));

    /// <summary>
    /// The ivshmem peer id a side publishes (wire-format.md, Doorbells): only "0x0001 | id" names a peer;
    /// nothing written (the host's loopback device side) and anything a hostile peer scribbles mean peer 0.
    /// </summary>
    [Theory]
    [InlineData(0u, (ushort)0)]
    [InlineData(0x10000u, (ushort)0)]
    [InlineData(0x10001u, (ushort)1)]
    [InlineData(0x1FFFFu, (ushort)0xFFFF)]
    [InlineData(0x00000007u, (ushort)0)]
    [InlineData(0x00020001u, (ushort)0)]
    [InlineData(0xFFFF0003u, (ushort)0)]
    public void IvshmemPeerIdNeedsItsMarker(uint word, ushort peer)
    {
        using SharedWindow w = SharedWindow.CreateGuarded(4096);
        w.Accessor.WriteU32(WindowLayout.DeviceSideState + WindowLayout.SideIvshmemPeer, word);
        Assert.Equal(peer, Vop.Links.Pci.IvshmemRegisterDoorbell.PublishedPeer(w.Accessor, WindowLayout.DeviceSideState));
        Assert.Equal((ushort)0, Vop.Links.Pci.IvshmemRegisterDoorbell.PublishedPeer(w.Accessor, WindowLayout.DriverSideState));
    }
}
