using Tmds.Linux;
using Vop.Links.Devices;
using Vop.Links.Doorbells;
using Vop.Links.Interop;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Windows;
using Vop.Netstack.Tap;
using Vop.Netstack.Virtio;
using static Vop.Netstack.VhostNet.VhostNetInterop;

namespace Vop.Netstack.VhostNet;

/// <summary>
/// One session of a net device's queue pair handed to the kernel's vhost-net: the kernel's worker reads
/// the driver's transmit chains into the TAP and the TAP's frames into the driver's receive buffers, in
/// vop's window, and vop's pump does not run. The sequence is QEMU's (hw/virtio/vhost.c, vhost_net.c):
/// SET_OWNER, GET/SET_FEATURES, SET_MEM_TABLE, per ring NUM/BASE/ADDR/KICK/CALL/ERR, then NET_SET_BACKEND
/// with the TAP. <see cref="Dispose"/> unbinds the TAP (the kernel flushes its worker), reads back where
/// each ring stands and closes the device.
///
/// The memory table is one region: the window's buffer region, at guest-physical address = its window
/// offset, so a descriptor's addr (a window offset, docs/wire-format.md) is used as it stands and anything
/// outside the buffer region (header, device table, rings, or beyond the window) fails the kernel's
/// translation. Ring addresses are user addresses inside the mapping. A ring the kernel refuses is
/// signalled on the queue's error eventfd (VHOST_SET_VRING_ERR), which <see cref="Fault"/> reports.
/// </summary>
internal sealed unsafe class VhostNetDevice : IDisposable
{
    private const int Queues = 2; // vhost-net: ring 0 = receiveq (VHOST_NET_VQ_RX), ring 1 = transmitq (VHOST_NET_VQ_TX)

    private readonly SafeFd _fd;
    private readonly DeviceQueue[] _queues;
    private readonly WindowAccessor _window;
    private readonly EventFdDoorbell[] _errors = new EventFdDoorbell[Queues];
    private readonly CallRelay?[] _relays = new CallRelay?[Queues];
    private readonly string _what;
    private RingErrorKind _fault;
    private bool _disposed;

    private VhostNetDevice(SafeFd fd, DeviceQueueSet set, int pair, string tapName)
    {
        _fd = fd;
        _window = set.Window;
        _queues = [set.Queues[2 * pair], set.Queues[(2 * pair) + 1]];
        _what = $"vhost-net for tap {tapName}";
    }

    /// <summary>The virtio ring/transport bits (24..40) a device must only offer when the kernel's vhost-net has them too.</summary>
    public const ulong TransportBits = 0x1FF_FF00_0000UL;

    /// <summary>
    /// The features vhost-net supports (VHOST_GET_FEATURES, which needs no owner), for masking what the
    /// device offers. Throws an <see cref="IOException"/> naming /dev/vhost-net when it cannot be opened.
    /// </summary>
    public static ulong KernelFeatures()
    {
        using SafeFd fd = Open();
        ulong features = 0;
        Errno.Check(LibC.ioctl(fd.Fd, unchecked((int)VHOST_GET_FEATURES), &features), $"{DevicePath}: VHOST_GET_FEATURES");
        return features;
    }

    /// <summary>
    /// What a vhost-net device offers of <paramref name="offered"/>: net-specific bits are the TAP's business
    /// and stay (the kernel passes the header through), ring and transport bits only where the kernel has
    /// them; MRG_RXBUF only where the kernel has it (vop's window devices do not offer it anyway).
    /// </summary>
    public static ulong Mask(ulong offered, ulong kernel)
    {
        ulong kernelOwned = TransportBits | NetFeatures.MrgRxbuf;
        return (offered & ~kernelOwned) | (offered & kernelOwned & kernel);
    }

    /// <summary>
    /// Hands pair <paramref name="pair"/> of <paramref name="set"/> to a fresh vhost-net device bound to
    /// <paramref name="tap"/>. Any refused step throws an <see cref="IOException"/> naming the ioctl and errno,
    /// after closing what it opened.
    /// </summary>
    public static VhostNetDevice Start(DeviceQueueSet set, int pair, TapDevice tap, string tapName)
    {
        SafeFd fd = Open();
        var device = new VhostNetDevice(fd, set, pair, tapName);
        try
        {
            device.Setup(set, pair, tap);
            return device;
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    private static SafeFd Open()
    {
        byte[] path = "/dev/vhost-net\0"u8.ToArray();
        int fd;
        fixed (byte* p = path)
        {
            fd = LibC.open(p, LibC.O_RDWR | LibC.O_CLOEXEC, 0);
        }

        if (fd < 0)
        {
            int errno = Errno.Last;
            throw new IOException(errno == LibC.ENOENT
                ? $"{DevicePath} does not exist (this kernel has no vhost-net: modprobe vhost_net, or use datapath \"pump\")"
                : $"open({DevicePath}): {Errno.Describe(errno)}", errno);
        }

        return new SafeFd(fd);
    }

    private void Setup(DeviceQueueSet set, int pair, TapDevice tap)
    {
        ulong negotiated = set.Negotiated;
        Ioctl(VHOST_SET_OWNER, null, "VHOST_SET_OWNER");

        ulong kernel = 0;
        Ioctl(VHOST_GET_FEATURES, &kernel, "VHOST_GET_FEATURES");
        ulong wanted = negotiated & (TransportBits | NetFeatures.MrgRxbuf);
        if ((wanted & ~kernel) != 0)
        {
            throw new IOException($"{_what}: the driver negotiated 0x{wanted & ~kernel:x}, which the kernel's vhost-net does not support (it offers 0x{kernel:x})");
        }

        // Only the bits vhost-net knows (it refuses others with EOPNOTSUPP): the ring format, EVENT_IDX,
        // VERSION_1 (the 12-byte header), MRG_RXBUF. Never VHOST_NET_F_VIRTIO_NET_HDR: the TAP carries the header.
        ulong features = wanted & kernel;
        Ioctl(VHOST_SET_FEATURES, &features, "VHOST_SET_FEATURES");

        // The TAP reads and writes the header the kernel expects for these features: virtio_net_hdr_v1
        // (12 bytes) with VERSION_1 or MRG_RXBUF, the legacy 10-byte header otherwise.
        int hdr = (features & (VirtioFeatures.Version1 | NetFeatures.MrgRxbuf)) != 0 ? 12 : 10;
        if (tap.IsTap)
        {
            Errno.Check(LibC.ioctl(tap.Fd, TapInterop.TUNSETVNETHDRSZ, &hdr), $"{_what}: TUNSETVNETHDRSZ {hdr}");
        }

        BufferRegion buffers = _queues[0].Buffers;
        ulong size = buffers.Length & ~(VhostPageSize - 1);
        if ((buffers.Offset & (VhostPageSize - 1)) != 0 || size == 0 || _queues.Any(q => q.HasGuestRegions || q.Buffers != buffers))
        {
            throw new IOException($"{_what}: the buffer region [0x{buffers.Offset:x}, +0x{buffers.Length:x}) is not one page-aligned region");
        }

        var table = new MemoryOneRegion
        {
            NRegions = 1,
            Region = new MemoryRegion
            {
                GuestPhysAddr = buffers.Offset,
                MemorySize = size,
                UserspaceAddr = (ulong)_window.Address(buffers.Offset, size),
            },
        };
        Ioctl(VHOST_SET_MEM_TABLE, &table, "VHOST_SET_MEM_TABLE");

        for (int q = 0; q < Queues; q++)
        {
            DeviceQueue queue = _queues[q];
            SplitRingLayout l = queue.Layout;
            string ring = $"ring {q}";
            var num = new VringState { Index = (uint)q, Num = queue.Size };
            Ioctl(VHOST_SET_VRING_NUM, &num, $"VHOST_SET_VRING_NUM {ring} {queue.Size}");
            var @base = new VringState { Index = (uint)q, Num = queue.LastAvail };
            Ioctl(VHOST_SET_VRING_BASE, &@base, $"VHOST_SET_VRING_BASE {ring} {queue.LastAvail}");
            var addr = new VringAddr
            {
                Index = (uint)q,
                DescUserAddr = (ulong)_window.Address(l.DescOffset, SplitRingLayout.DescBytes(l.Size)),
                UsedUserAddr = (ulong)_window.Address(l.UsedOffset, SplitRingLayout.UsedBytes(l.Size)),
                AvailUserAddr = (ulong)_window.Address(l.AvailOffset, SplitRingLayout.AvailBytes(l.Size)),
            };
            Ioctl(VHOST_SET_VRING_ADDR, &addr, $"VHOST_SET_VRING_ADDR {ring}");

            // The kernel polls the eventfd the driver rings for this queue; vop no longer reads it.
            var kick = new VringFile { Index = (uint)q, Fd = set.Kicks[(2 * pair) + q].Fd };
            Ioctl(VHOST_SET_VRING_KICK, &kick, $"VHOST_SET_VRING_KICK {ring}");

            var call = new VringFile { Index = (uint)q, Fd = CallFd(q, queue.Notify) };
            Ioctl(VHOST_SET_VRING_CALL, &call, $"VHOST_SET_VRING_CALL {ring}");

            _errors[q] = new EventFdDoorbell();
            var err = new VringFile { Index = (uint)q, Fd = _errors[q].Fd };
            Ioctl(VHOST_SET_VRING_ERR, &err, $"VHOST_SET_VRING_ERR {ring}");
        }

        for (int q = 0; q < Queues; q++)
        {
            var backend = new VringFile { Index = (uint)q, Fd = tap.Fd };
            Ioctl(VHOST_NET_SET_BACKEND, &backend, $"VHOST_NET_SET_BACKEND ring {q} tap fd");
        }
    }

    /// <summary>
    /// The eventfd the kernel signals to interrupt the driver for queue <paramref name="q"/>: the driver's own
    /// eventfd when the link's doorbell is one (loopback, ivshmem), else a relay thread's that rings the
    /// link's doorbell (a window counter, a BAR register) for it.
    /// </summary>
    private int CallFd(int q, Doorbell? notify)
    {
        Doorbell? target = notify is ForwardingDoorbell f ? f.Target : notify;
        if (target is EventFdDoorbell e)
        {
            return e.Fd;
        }

        var relay = new CallRelay($"vop-vhost-call-{q}", notify);
        _relays[q] = relay;
        relay.Start();
        return relay.Fd;
    }

    /// <summary>None while the kernel is content; <see cref="RingErrorKind.Kernel"/> once it signalled a ring error (latched, counted once).</summary>
    public RingErrorKind Fault
    {
        get
        {
            if (_fault == RingErrorKind.None && !_disposed)
            {
                for (int q = 0; q < Queues; q++)
                {
                    if (_errors[q] is EventFdDoorbell e && e.Drain() != 0)
                    {
                        _queues[q].Stats.RingErrors[(int)RingErrorKind.Kernel]++;
                        _fault = RingErrorKind.Kernel;
                    }
                }
            }

            return _fault;
        }
    }

    /// <summary>Where the kernel left each ring (VHOST_GET_VRING_BASE), as read at stop.</summary>
    public ushort[] StoppedAt { get; } = new ushort[Queues];

    private void Ioctl(uint request, void* arg, string what) =>
        Errno.Check(LibC.ioctl(_fd.Fd, unchecked((int)request), arg), $"{_what}: {what}");

    /// <summary>Unbinds the TAP from both rings (the kernel flushes its worker), reads back the rings' state, closes the device.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        for (int q = 0; q < Queues; q++)
        {
            var backend = new VringFile { Index = (uint)q, Fd = -1 };
            _ = LibC.ioctl(_fd.Fd, unchecked((int)VHOST_NET_SET_BACKEND), &backend);
        }

        for (int q = 0; q < Queues; q++)
        {
            var state = new VringState { Index = (uint)q };
            if (LibC.ioctl(_fd.Fd, unchecked((int)VHOST_GET_VRING_BASE), &state) == 0)
            {
                // The kernel's last_avail, and the used index it published: the queue resumes from there
                // (a device side restarting on a live ring), and InFlight stays truthful.
                StoppedAt[q] = (ushort)state.Num;
                _queues[q].SetBase((ushort)state.Num, _window.ReadU16Acquire(_queues[q].Layout.UsedIdx));
            }
        }

        _fd.Dispose();
        foreach (CallRelay? r in _relays)
        {
            r?.Dispose();
        }

        foreach (EventFdDoorbell? e in _errors)
        {
            e?.Dispose();
        }
    }

    /// <summary>
    /// For a link whose doorbell to the driver is no eventfd: a thread that sleeps on an eventfd the kernel
    /// signals and rings the link's doorbell for each signal. It carries interrupts only, never a packet.
    /// </summary>
    private sealed class CallRelay : PumpThread
    {
        private readonly EventFdDoorbell _call = new();
        private readonly Doorbell? _target;

        public CallRelay(string name, Doorbell? target)
            : base(name)
        {
            _target = target;
        }

        public int Fd => _call.Fd;

        protected override void Run()
        {
            using var epoll = new Epoll(2);
            epoll.Add(_call.Fd);
            epoll.Add(StopBell.Fd);
            while (!Stopping)
            {
                epoll.Wait(-1);
                if (_call.Drain() != 0)
                {
                    _target?.Ring();
                }
            }
        }

        protected override void OnStopped() => _call.Dispose();
    }
}
