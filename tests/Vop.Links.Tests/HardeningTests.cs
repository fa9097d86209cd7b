using System.Text;
using Tmds.Linux;
using Vop.Links.Devices;
using Vop.Links.Interop;
using Vop.Links.Ivshmem;
using Vop.Links.Loopback;
using Vop.Links.Rings;
using Vop.Links.Tests.Infrastructure;
using Vop.Links.Transport;
using Vop.Links.Windows;
using Vop.Links.Stats;

namespace Vop.Links.Tests;

/// <summary>
/// The defences outside the rings, one piece at a time: sealed memory, window file ownership, one client
/// per ivshmem socket, self-repair of device-owned window parts, and the pump's exception boundary.
/// </summary>
public sealed unsafe class HardeningTests : IDisposable
{
    private readonly TempPaths _paths = new();

    public void Dispose() => _paths.Dispose();

    private static SafeFd RawMemfd(uint flags, long size)
    {
        byte[] name = Encoding.UTF8.GetBytes("vop-hardening\0");
        int fd;
        fixed (byte* p = name)
        {
            fd = Errno.Check(LibC.memfd_create(p, flags), "memfd_create");
        }

        Errno.Check(LibC.ftruncate(fd, size), "ftruncate");
        return new SafeFd(fd);
    }

    [Fact]
    public void VopsOwnMemfdCannotBeResized()
    {
        using SharedWindow w = SharedWindow.CreateMemfd("sealed", 1 << 20);
        int seals = MemorySeals.Seals(w.Fd!);
        Assert.Equal(LibC.F_SEAL_SHRINK | LibC.F_SEAL_GROW | LibC.F_SEAL_SEAL, seals & (LibC.F_SEAL_SHRINK | LibC.F_SEAL_GROW | LibC.F_SEAL_SEAL));
        Assert.NotEqual(0, LibC.ftruncate(w.Fd!.Fd, 4096));
        Assert.Equal(LibC.EPERM, LibC.errno);
        Assert.NotEqual(0, LibC.ftruncate(w.Fd!.Fd, 2 << 20));
        Assert.True(MemorySeals.IsMemfd(w.Fd!));
    }

    [Fact]
    public void ReceivedMemfdThatAcceptsSealsIsSealedByUs()
    {
        using SafeFd fd = RawMemfd(LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING, 1 << 20);
        Assert.Equal(0, MemorySeals.Seals(fd));
        using SharedWindow w = SharedWindow.MapFd(new SafeFd(LibC.dup(fd.Fd)), 0, 1 << 20, "sealable");
        Assert.NotEqual(0, MemorySeals.Seals(fd) & LibC.F_SEAL_SHRINK);
        Assert.NotEqual(0, LibC.ftruncate(fd.Fd, 4096)); // the peer's own fd cannot shrink it any more
        w.Accessor.WriteU64((1 << 20) - 8, 42);
    }

    [Fact]
    public void ReceivedMemoryThatCouldShrinkIsRefused()
    {
        SafeFd unsealable = RawMemfd(LibC.MFD_CLOEXEC, 1 << 20);
        LinkRefusedException e = Assert.Throws<LinkRefusedException>(() => SharedWindow.MapFd(unsealable, 0, 1 << 20, "ivshmem:test"));
        Assert.Equal(LinkCounters.Refusal.UnsealedMemory, e.Reason);
        Assert.Contains("F_SEAL_SHRINK", e.Message, StringComparison.Ordinal);
        Assert.True(unsealable.IsClosed, "a refused fd is closed, not leaked");

        // A plain tmpfs file (what shm_open gives) cannot be sealed at all.
        string path = _paths.File("plain");
        File.WriteAllBytes(path, new byte[1 << 20]);
        int fd;
        fixed (byte* p = PathBytes(path))
        {
            fd = Errno.Check(LibC.open(p, LibC.O_RDWR | LibC.O_CLOEXEC), "open");
        }

        var file = new SafeFd(fd);
        Assert.Throws<LinkRefusedException>(() => SharedWindow.MapFd(file, 0, 1 << 20, "file"));
    }

    private static byte[] PathBytes(string path) => Encoding.UTF8.GetBytes(path + "\0");

    [Theory]
    [InlineData(0x1B6, "others can write it")] // 0666
    [InlineData(0x1B0, "others can write it")] // 0660
    [InlineData(0x180, null)]                  // 0600
    [InlineData(0x1A4, null)]                  // 0644: others may read, not write
    public void WindowFileMustBeWritableByItsOwnerOnly(int mode, string? refusal)
    {
        string path = _paths.File($"window-{mode:x}");
        File.WriteAllBytes(path, new byte[8192]);
        File.SetUnixFileMode(path, (UnixFileMode)mode);
        if (refusal is null)
        {
            using SharedWindow w = SharedWindow.OpenFile(path, 0, 8192, create: false);
            Assert.Equal(8192UL, w.Size);
        }
        else
        {
            LinkRefusedException e = Assert.Throws<LinkRefusedException>(() => SharedWindow.OpenFile(path, 0, 8192, create: false));
            Assert.Equal(LinkCounters.Refusal.UnsafeWindowFile, e.Reason);
            Assert.Contains(refusal, e.Message, StringComparison.Ordinal);
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void WindowFileOfAnotherUserIsRefused()
    {
        Assert.True(LibC.geteuid() == 0, "needs root to chown a file to another user: run ./test.sh as root");
        string path = _paths.File("foreign");
        File.WriteAllBytes(path, new byte[8192]);
        File.SetUnixFileMode(path, (UnixFileMode)0x180);
        fixed (byte* p = PathBytes(path))
        {
            Assert.Equal(0, LibC.chown(p, 65534, 65534));
        }

        LinkRefusedException e = Assert.Throws<LinkRefusedException>(() => SharedWindow.OpenFile(path, 0, 8192, create: false));
        Assert.Contains("belongs to uid 65534", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DeviceSideCreatesWindowFileOwnerOnlyAndNeverThroughASymlink()
    {
        string path = _paths.File("created");
        using (SharedWindow w = SharedWindow.OpenFile(path, 0, 8192, create: true))
        {
            Assert.Equal((UnixFileMode)0x180, File.GetUnixFileMode(path));
        }

        string target = _paths.File("target");
        File.WriteAllBytes(target, [1, 2, 3]);
        string link = _paths.File("link");
        File.CreateSymbolicLink(link, target);
        Assert.Throws<IOException>(() => SharedWindow.OpenFile(link, 0, 8192, create: true));
        Assert.Equal(3, new FileInfo(target).Length);
    }

    [Fact]
    public void IvshmemServerServesOneClientAndRefusesTheRest()
    {
        using SharedWindow window = SharedWindow.CreateMemfd("one-client", 1 << 20);
        using var server = new IvshmemServer(_paths.File("one.sock"), window.Fd!, 3, maxPeers: 1);
        int refused = 0;
        server.PeerRefused += () => Interlocked.Increment(ref refused);
        server.Start();
        using IvshmemClient first = IvshmemClient.Connect(server.SocketPath, 3, CancellationToken.None);
        first.SharedMemory?.Dispose();
        Assert.True(SpinWait.SpinUntil(() => server.Peers.Count == 1, 5000));

        Span<byte> buf = stackalloc byte[8];
        for (int i = 0; i < 5; i++)
        {
            using SafeFd stranger = UnixSocket.TryConnect(server.SocketPath)!;
            Assert.True(UnixSocket.WaitReadable(stranger, 5000));
            var fds = new List<SafeFd>();
            Assert.False(UnixSocket.Receive(stranger, buf, fds), "a refused client must get EOF before any message");
            Assert.Empty(fds);
        }

        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref refused) == 5, 5000));
        Assert.Equal(5, server.RefusedPeers);
        Assert.Single(server.Peers);
        Assert.Equal(first.Id, server.Peers[0].Id);
        Assert.True(first.ServerAlive);
        Assert.Equal([(ushort)0], first.PeerIds); // it never heard of the strangers
    }

    [Fact]
    public void DeviceSideRepairsHeaderStateAndSlotsInPlace()
    {
        using var link = new InProcessLink(4 << 20, vectors: 8);
        var backend = new IdleDevice();
        var counters = new LinkCounters();
        using var side = new DeviceSideLink("repair", link.Device, [backend], counters: counters);
        side.Start();
        WindowAccessor w = link.DriverWindow.Accessor;
        Assert.True(SpinWait.SpinUntil(() => WindowHeader.TryRead(w, out _) is null, 5000));
        byte[] before = w.Bytes(0, 0x3000).ToArray();
        uint epoch = w.ReadU32(WindowLayout.DeviceSideState + WindowLayout.SideEpoch);

        w.WriteU32(WindowLayout.HeaderMagic, 0xdeadbeef);
        w.WriteU64(WindowLayout.HeaderBufferSize, 1);
        w.WriteU32(WindowLayout.DeviceSideState + WindowLayout.SideEpoch, 7);
        w.WriteU16(WindowLayout.QueueEntry(0, 1) + WindowLayout.QueueVector, 1);
        w.WriteU64(WindowLayout.Slot(0) + WindowLayout.SlotConfig, ulong.MaxValue);
        Assert.True(SpinWait.SpinUntil(() => counters.Repairs.Values.All(v => v >= 1), 5000), $"repairs: {string.Join(", ", counters.Repairs)}");

        Assert.Null(WindowHeader.TryRead(w, out _));
        Assert.Equal(epoch, w.ReadU32(WindowLayout.DeviceSideState + WindowLayout.SideEpoch));
        // Every device-owned byte reads as before, except the heartbeat, which kept beating.
        byte[] after = w.Bytes(0, 0x3000).ToArray();
        for (int i = 0; i < after.Length; i++)
        {
            bool heartbeat = i >= (int)(WindowLayout.DeviceSideState + WindowLayout.SideHeartbeat) && i < (int)(WindowLayout.DeviceSideState + WindowLayout.SideHeartbeat + 8);
            Assert.True(heartbeat || before[i] == after[i], $"byte 0x{i:x} is 0x{after[i]:x2}, was 0x{before[i]:x2}");
        }

        Assert.Equal(1, counters.Repairs[LinkCounters.Part.Header]);
        Assert.Equal(1, counters.Repairs[LinkCounters.Part.State]);
        Assert.Equal(1, counters.Repairs[LinkCounters.Part.Slot]);
        Assert.Equal(0, side.PeerDepartures);

        // The driver-owned part of a slot is the driver's: writing it is no damage.
        w.WriteU32(WindowLayout.Slot(0) + WindowLayout.SlotDriverStatus, 1);
        Thread.Sleep(1200);
        Assert.Equal(1, counters.Repairs[LinkCounters.Part.Slot]);
    }

    [Fact]
    public void PumpThatThrowsEndsItselfNotTheProcess()
    {
        using var pump = new ThrowingPump();
        pump.Start();
        Assert.True(SpinWait.SpinUntil(() => pump.Crash is not null, 5000));
        Assert.IsType<InvalidOperationException>(pump.Crash);
        Assert.True(pump.Crashed);
        pump.Stop(); // joins a thread that already ended
    }

    private sealed class ThrowingPump : PumpThread
    {
        public ThrowingPump()
            : base("vop-test-throwing")
        {
        }

        public bool Crashed { get; private set; }

        protected override void Run() => throw new InvalidOperationException("epoll_ctl: File exists");

        protected override void OnCrash(Exception e) => Crashed = true;
    }

    /// <summary>A device with two queues that never starts a datapath: enough for the control loop.</summary>
    private sealed class IdleDevice : IDeviceBackend
    {
        public string Name => "idle";

        public DeviceType Type => DeviceType.RingTest;

        public ulong OfferedFeatures => VirtioFeatures.Version1;

        public byte[] Config => [1, 2, 3, 4];

        public IReadOnlyList<ushort> QueueSizes => [16, 16];

        public IReadOnlyList<QueueStats> Stats { get; } = [new QueueStats("q0"), new QueueStats("q1")];

        public RingErrorKind Fault => RingErrorKind.None;

        public void Start(DeviceSession session)
        {
        }

        public void Stop()
        {
        }
    }
}
