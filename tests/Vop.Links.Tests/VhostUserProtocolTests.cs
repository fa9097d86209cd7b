using System.Buffers.Binary;
using Vop.Links.Devices;
using Vop.Links.Doorbells;
using Vop.Links.Interop;
using Vop.Links.Rings;
using Vop.Links.Tests.Infrastructure;
using Vop.Links.Transport;
using Vop.Links.VhostUser;
using Vop.Links.Windows;
using Vop.Links.Stats;

namespace Vop.Links.Tests;

/// <summary>
/// The vhost-user back-end against a scripted front-end: guest memory with a hole (like the VGA hole below
/// 1 MiB), ring addresses translated from front-end virtual to guest-physical, descriptors that point into
/// the hole or past the end quarantined without a touch, and malformed messages refused or the connection
/// dropped, after which the next front-end is served.
/// </summary>
public sealed unsafe class VhostUserProtocolTests : IDisposable
{
    // Guest-physical map: region 0 = [0, 640 KiB) at fd offset 0; hole [640 KiB, 1 MiB); region 1 =
    // [1 MiB, 2 MiB) at fd offset 640 KiB. QEMU's user addresses are arbitrary; these are made up.
    private const ulong Low = 0xA0000;
    private const ulong HighGpa = 0x100000;
    private const ulong HighSize = 0x100000;
    private const ulong UserBase = 0x7f12_0000_0000;
    private const ushort QueueSize = 8;

    private readonly TempPaths _paths = new();
    private readonly SharedWindow _guest = SharedWindow.CreateMemfd("vhost-guest", Low + HighSize);
    private readonly RecordingDevice _device = new();
    private readonly VhostUserLink _link;

    public VhostUserProtocolTests()
    {
        _link = new VhostUserLink("vm", _paths.File("vhost.sock"), listen: true, _device, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        _link.Start();
    }

    private static GuestMemoryRegion[] Table =>
    [
        new(0, Low, UserBase, 0),
        new(HighGpa, HighSize, UserBase + HighGpa, Low),
    ];

    private static ulong RingGpa(int ring) => HighGpa + 0x10000 + ((ulong)ring * 0x1000);

    /// <summary>Where a guest-physical address of region 1 lives in our own map of the memfd.</summary>
    private static ulong FileOffset(ulong gpa) => gpa >= HighGpa ? gpa - HighGpa + Low : gpa;

    public void Dispose()
    {
        _link.Dispose();
        _guest.Dispose();
        _paths.Dispose();
    }

    private VhostUserFrontEnd Negotiate(ulong features)
    {
        var fe = new VhostUserFrontEnd(_paths.File("vhost.sock"));
        ulong offered = fe.Get(VhostUserRequest.GetFeatures);
        Assert.NotEqual(0UL, offered & VhostUserProtocol.ProtocolFeaturesBit);
        Assert.NotEqual(0UL, offered & (1UL << 32));
        ulong protocol = fe.Get(VhostUserRequest.GetProtocolFeatures);
        Assert.NotEqual(0UL, protocol & VhostUserProtocol.ProtocolReplyAck);
        fe.SendU64(VhostUserRequest.SetProtocolFeatures, VhostUserProtocol.ProtocolReplyAck | VhostUserProtocol.ProtocolMq, needReply: false);
        Assert.Equal(1UL, fe.Get(VhostUserRequest.GetQueueNum));
        Assert.Equal(0UL, fe.Send(VhostUserRequest.SetOwner, []));
        Assert.Equal(0UL, fe.SendU64(VhostUserRequest.SetFeatures, features));
        Assert.Equal(0UL, fe.SetMemTable(Table, _guest.Fd!.Fd));
        return fe;
    }

    private static ulong SetUpRing(VhostUserFrontEnd fe, int ring, List<EventFdDoorbell> keep, ulong? descUser = null)
    {
        ulong gpa = RingGpa(ring);
        Assert.Equal(0UL, fe.SendState(VhostUserRequest.SetVringNum, (uint)ring, QueueSize));
        Assert.Equal(0UL, fe.SendState(VhostUserRequest.SetVringBase, (uint)ring, 0));
        Assert.Equal(0UL, fe.SetVringAddr((uint)ring, descUser ?? (UserBase + gpa), UserBase + gpa + 0x400, UserBase + gpa + 0x200));
        var call = new EventFdDoorbell();
        var kick = new EventFdDoorbell();
        keep.Add(call);
        keep.Add(kick);
        Assert.Equal(0UL, fe.SendU64(VhostUserRequest.SetVringCall, (ulong)ring, [call.Fd]));
        Assert.Equal(0UL, fe.SendState(VhostUserRequest.SetVringEnable, (uint)ring, 1));
        return fe.SendU64(VhostUserRequest.SetVringKick, (ulong)ring, [kick.Fd]);
    }

    /// <summary>Writes the descriptor for avail entry <paramref name="availIdx"/> and makes it available.</summary>
    private void Post(int ring, ushort availIdx, ulong addr, uint len, ushort flags)
    {
        WindowAccessor w = _guest.Accessor;
        ulong gpa = RingGpa(ring); // desc, avail at +0x200, used at +0x400 (SetUpRing), all in the high region
        var l = new SplitRingLayout(QueueSize, FileOffset(gpa), FileOffset(gpa + 0x200), FileOffset(gpa + 0x400));
        ushort slot = (ushort)(availIdx % QueueSize);
        w.Write(l.Desc(slot), new VirtqDesc(addr, len, flags, 0));
        w.WriteU16(l.AvailEntry(slot), slot);
        w.WriteU16Release(l.AvailIdx, (ushort)(availIdx + 1));
    }

    [Fact]
    public void RingsTranslateToGuestPhysicalAndTheHoleIsNeverTouched()
    {
        var keep = new List<EventFdDoorbell>();
        using VhostUserFrontEnd fe = Negotiate((1UL << 32) | VhostUserProtocol.ProtocolFeaturesBit);
        Assert.Equal(0UL, SetUpRing(fe, 0, keep));
        Assert.Equal(0UL, SetUpRing(fe, 1, keep));
        Assert.True(_device.Started.Wait(5000), "device did not start with every ring ready");
        DeviceQueueSet set = _device.Set!;
        Assert.Equal(HighGpa + HighSize, set.Window.Size); // the window spans guest-physical 0 .. 2 MiB, hole included
        DeviceQueue tx = set.Queues[1];

        // A buffer in region 1 pops with its guest-physical address, readable through the window at that offset.
        ulong bufferGpa = HighGpa + 0x20000;
        _guest.Accessor.WriteU32(FileOffset(bufferGpa), 0xC0FFEE);
        Post(1, 0, bufferGpa, 64, 0);
        Span<BufferSegment> segs = stackalloc BufferSegment[4];
        Assert.True(tx.TryPop(segs, out DescriptorChain chain));
        Assert.Equal(bufferGpa, segs[0].Offset);
        Assert.Equal(0xC0FFEEu, set.Window.ReadU32(segs[0].Offset));
        tx.PushUsed(chain.Head, 0);
        tx.Publish();

        // Into the hole: quarantined, never dereferenced (a touch of the PROT_NONE hole would SIGSEGV).
        Post(1, 1, Low + 0x1000, 64, 0);
        Assert.False(tx.TryPop(segs, out _));
        Assert.Equal(RingErrorKind.OutOfWindow, tx.Fault);
        Assert.False(set.Queues[0].Fault != RingErrorKind.None);

        // The link sees the quarantine, stops the device and rings the front-end's error fd (none set here).
        Assert.True(Until(() => _link.Quarantines == 1, TimeSpan.FromSeconds(5)));
        Assert.True(_device.StopCount >= 1);

        // GET_VRING_BASE reports where the ring stands: one chain consumed.
        Span<byte> index = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(index, 1);
        ulong state = fe.Get(VhostUserRequest.GetVringBase, index);
        Assert.Equal(1UL, state & 0xFFFF_FFFF);
        Assert.Equal(1UL, state >> 32);
        foreach (EventFdDoorbell d in keep)
        {
            d.Dispose();
        }
    }

    [Theory]
    [InlineData(0UL, 0xA0000UL, true)]
    [InlineData(0x9F000UL, 0x1001UL, false)]      // straddles the end of region 0 into the hole
    [InlineData(0xA0000UL, 1UL, false)]           // first byte of the hole
    [InlineData(0xFFFFFUL, 2UL, false)]           // straddles the hole into region 1
    [InlineData(0x100000UL, 0x100000UL, true)]
    [InlineData(0x1FFFFFUL, 2UL, false)]          // past the end
    [InlineData(ulong.MaxValue, 2UL, false)]      // wraps
    [InlineData(0x100000UL, ulong.MaxValue, false)]
    public void GuestRegionsAcceptOnlyRangesInsideOneRegion(ulong addr, ulong len, bool inside)
    {
        var regions = new GuestRegions([(0UL, Low), (HighGpa, HighSize)]);
        Assert.Equal(inside, regions.Contains(addr, len));
    }

    [Fact]
    public void HostileMessagesAreRefusedAndTheNextFrontEndIsServed()
    {
        var keep = new List<EventFdDoorbell>();
        using (VhostUserFrontEnd fe = Negotiate((1UL << 32) | VhostUserProtocol.ProtocolFeaturesBit))
        {
            // Features never offered.
            Assert.Equal(1UL, fe.SendU64(VhostUserRequest.SetFeatures, 1UL << 63));

            // Overlapping, misaligned, beyond-1-TiB and fd-less memory tables.
            Assert.Equal(1UL, fe.SetMemTable([new(0, 0x200000, UserBase, 0), new(0x100000, 0x100000, UserBase + 0x100000, 0)], _guest.Fd!.Fd));
            Assert.Equal(1UL, fe.SetMemTable([new(0x800, 0x1000, UserBase, 0)], _guest.Fd!.Fd));
            Assert.Equal(1UL, fe.SetMemTable([new(1UL << 41, 0x1000, UserBase, 0)], _guest.Fd!.Fd));
            Assert.Equal(1UL, fe.SetMemTable([new(0, 0x400000, UserBase, 0)], _guest.Fd!.Fd)); // past the fd's end: would SIGBUS
            byte[] lying = new byte[8 + 32];
            BinaryPrimitives.WriteUInt32LittleEndian(lying, 1);
            BinaryPrimitives.WriteUInt64LittleEndian(lying.AsSpan(16), 0x1000);
            Assert.Equal(1UL, fe.Send(VhostUserRequest.SetMemTable, lying));

            // A ring size that is not a power of two, a ring that does not exist, a too-short payload.
            Assert.Equal(1UL, fe.SendState(VhostUserRequest.SetVringNum, 0, 3));
            Assert.Equal(1UL, fe.SendState(VhostUserRequest.SetVringNum, 7, 8));
            Assert.Equal(1UL, fe.Send(VhostUserRequest.SetVringBase, new byte[2]));

            // Ring addresses outside the memory table: the rings never start.
            Assert.Equal(0UL, SetUpRing(fe, 0, keep));
            Assert.Equal(1UL, SetUpRing(fe, 1, keep, descUser: 0x1234_0000));
            Assert.False(_device.Started.IsSet);

            // A payload larger than any real message ends the connection.
            byte[] huge = new byte[12];
            BinaryPrimitives.WriteUInt32LittleEndian(huge, (uint)VhostUserRequest.SetMemTable);
            BinaryPrimitives.WriteUInt32LittleEndian(huge.AsSpan(4), 1);
            BinaryPrimitives.WriteUInt32LittleEndian(huge.AsSpan(8), 1 << 20);
            fe.SendRaw(huge);
            Assert.True(fe.WaitClosed(5000), "vop kept a connection that sent a 1 MiB message");
        }

        // The link is still serving: a well-behaved front-end gets the device running.
        Assert.True(Until(() => !_link.Connected, TimeSpan.FromSeconds(5)));
        using (VhostUserFrontEnd fe = Negotiate((1UL << 32) | VhostUserProtocol.ProtocolFeaturesBit))
        {
            Assert.Equal(0UL, SetUpRing(fe, 0, keep));
            Assert.Equal(0UL, SetUpRing(fe, 1, keep));
            Assert.True(_device.Started.Wait(5000), "device did not start for the second front-end");
            Assert.True(_link.IsLive);
        }

        Assert.True(Until(() => !_link.IsLive && _link.Departures == 2, TimeSpan.FromSeconds(5)));
        foreach (EventFdDoorbell d in keep)
        {
            d.Dispose();
        }
    }

    private static bool Until(Func<bool> condition, TimeSpan timeout)
    {
        DateTime end = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > end)
            {
                return false;
            }

            Thread.Sleep(20);
        }

        return true;
    }

    [Fact]
    public void InConnectModeVopFindsTheFrontEndsSocketAndReconnects()
    {
        string path = _paths.File("qemu-server.sock");
        var device = new RecordingDevice();
        using var link = new VhostUserLink("vm2", path, listen: false, device, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        link.Start(); // nobody listens yet: vop retries
        using SafeFd listener = UnixSocket.Listen(path);
        for (int round = 1; round <= 2; round++)
        {
            Assert.True(UnixSocket.WaitReadable(listener, 5000), $"vop did not connect (round {round})");
            using var fe = new VhostUserFrontEnd(UnixSocket.Accept(listener)!);
            Assert.NotEqual(0UL, fe.Get(VhostUserRequest.GetFeatures) & VhostUserProtocol.ProtocolFeaturesBit);
            Assert.True(Until(() => link.Connected && link.Connections == round, TimeSpan.FromSeconds(5)));
        }

        Assert.True(Until(() => link.Departures >= 1, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void AFrontEndStallingInsideAMessageIsDroppedAndDoesNotHoldShutdown()
    {
        var fe = new VhostUserFrontEnd(_paths.File("vhost.sock"));
        byte[] half = new byte[12 + 4];
        BinaryPrimitives.WriteUInt32LittleEndian(half, (uint)VhostUserRequest.SetVringNum);
        BinaryPrimitives.WriteUInt32LittleEndian(half.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(half.AsSpan(8), 8);
        fe.SendRaw(half); // header plus 4 of 8 payload bytes, then nothing
        Assert.True(fe.WaitClosed(15_000), "vop kept waiting for the rest of a stalled message");
        fe.Dispose();

        // Another stalls and vop is stopped meanwhile: the stop shuts the socket down under the blocked read.
        using var second = new VhostUserFrontEnd(_paths.File("vhost.sock"));
        second.SendRaw(half);
        Assert.True(Until(() => _link.Connected, TimeSpan.FromSeconds(5)));
        _link.Dispose();
        Assert.False(_link.Connected);
        Assert.True(second.WaitClosed(1000));
    }

    /// <summary>A device that only records what the link hands it.</summary>
    private sealed class RecordingDevice : IVhostUserDevice
    {
        public ManualResetEventSlim Started { get; } = new();

        public DeviceQueueSet? Set { get; private set; }

        public int StopCount { get; private set; }

        public string Name => "net0";

        public DeviceType Type => DeviceType.Net;

        public ulong VhostUserFeatures => (1UL << 32) | (1UL << 29);

        public int QueueCount => 2;

        public IReadOnlyList<QueueStats> Stats { get; } = [new QueueStats("rx0"), new QueueStats("tx0")];

        public RingErrorKind Fault => Set is null ? RingErrorKind.None : Set.Queues.Select(q => q.Fault).FirstOrDefault(f => f != RingErrorKind.None);

        public void Start(DeviceQueueSet queues)
        {
            Set = queues;
            Started.Set();
        }

        public void Stop()
        {
            StopCount++;
        }
    }
}
