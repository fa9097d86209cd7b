using System.Text;
using Tmds.Linux;
using Vop.Links.Interop;
using Vop.Netstack.Tun;

namespace Vop.Netstack.Tap;

/// <summary>
/// A TAP interface opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and a 12-byte vnet header
/// (virtio_net_hdr_v1), non-blocking. Every read returns one frame prefixed by its header; every write
/// takes one. Errors name the interface and say what to do. <see cref="FromFd"/> wraps any descriptor
/// that keeps frame boundaries the same way (a SOCK_SEQPACKET socket: the root-free datapath tests).
/// In TUN mode (IFF_TUN instead of IFF_TAP, same header and offloads) reads and writes still carry
/// Ethernet frames: <see cref="TunFraming"/> adds and strips the Ethernet header in place and answers
/// ARP and neighbour solicitations, so the pumps above see a TAP either way.
/// </summary>
public sealed unsafe class TapDevice : IDisposable
{
    public const int VnetHeaderSize = 12;

    /// <summary>The largest MTU a TAP takes: drivers/net/tun.c sets max_mtu = 65535 - ETH_HLEN.</summary>
    public const int MaxMtu = 65535 - 14;

    private readonly SafeFd _fd;
    private readonly bool _isTap;
    private readonly bool _multiQueue;
    private readonly TunFraming? _tun;
    private bool _detached;

    private TapDevice(SafeFd fd, string name, bool isTap, bool multiQueue = false, TunAddresses? tun = null)
    {
        _fd = fd;
        Name = name;
        _isTap = isTap;
        _multiQueue = multiQueue;
        _tun = tun is null ? null : new TunFraming(tun);
    }

    /// <summary>Tap, or Tun: the interface reads and writes IP packets and this device frames them.</summary>
    public NetMode Mode => _tun is null ? NetMode.Tap : NetMode.Tun;

    /// <summary>In TUN mode the addresses the framing uses on the link (shared by the interface's queues); else null.</summary>
    public TunAddresses? TunAddresses => _tun?.Addresses;

    /// <summary>TUN mode's framing state (tests).</summary>
    internal TunFraming? Framing => _tun;

    public string Name { get; }

    public int Fd => _fd.Fd;

    /// <summary>False for a <see cref="FromFd"/> device: carrier, MTU, MAC and offloads do not exist there.</summary>
    public bool IsTap => _isTap;

    /// <summary>
    /// Wraps an open socket that speaks a TAP's frame format: one frame per message, the 12-byte
    /// virtio_net_hdr_v1 first (an AF_UNIX SOCK_SEQPACKET or SOCK_DGRAM socket, e.g. one end of a
    /// socketpair). Takes ownership of <paramref name="fd"/>. Reads and writes never block, whatever the
    /// fd's flags, and behave as a TAP's: a read returns the frame's full length even when the buffers
    /// were shorter (the rest is cut off and the frame consumed, as tun_put_user does), a write that does
    /// not fit fails. No TAP ioctl is issued; the offloads are whatever the other end writes in headers.
    /// </summary>
    /// <remarks>With <paramref name="tun"/> the socket plays a TUN: its messages are IP packets after the header.</remarks>
    public static TapDevice FromFd(SafeFd fd, string name, TunAddresses? tun = null)
    {
        ArgumentNullException.ThrowIfNull(fd);
        int type = 0;
        uint length = sizeof(int);
        if (LibC.getsockopt(fd.Fd, LibC.SOL_SOCKET, LibC.SO_TYPE, &type, (socklen_t*)&length) != 0 ||
            (type != LibC.SOCK_SEQPACKET && type != LibC.SOCK_DGRAM))
        {
            throw new ArgumentException($"{name}: fd {fd.Fd} is not a SOCK_SEQPACKET or SOCK_DGRAM socket: it would not keep frame boundaries", nameof(fd));
        }

        return new TapDevice(fd, name, isTap: false, tun: tun);
    }

    /// <summary>Creates the TAP <paramref name="name"/> (or attaches to a persistent one of that name).</summary>
    // multiQueue (IFF_MULTI_QUEUE): every Open of the same name adds a queue (its own fd); the kernel keeps
    // each flow on one queue. A TAP made without it takes no second queue, so one pair keeps the plain TAP.
    // tun: IFF_TUN with these link addresses instead of IFF_TAP (null).
    public static TapDevice Open(string name, bool multiQueue = false, TunAddresses? tun = null)
    {
        ValidateName(name);
        string kind = tun is null ? "tap" : "tun";
        if (!File.Exists("/dev/net/tun"))
        {
            throw new IOException($"{kind} {name}: /dev/net/tun is missing (load the tun module or give the container the device)");
        }

        byte[] path = Encoding.ASCII.GetBytes("/dev/net/tun\0");
        int raw;
        fixed (byte* p = path)
        {
            raw = LibC.open(p, LibC.O_RDWR | LibC.O_NONBLOCK | LibC.O_CLOEXEC, 0);
        }

        if (raw < 0)
        {
            int e = Errno.Last;
            string why = e == LibC.EPERM || e == LibC.EACCES ? "permission denied: needs root or CAP_NET_ADMIN and access to the device" : Errno.Describe(e);
            throw new IOException($"{kind} {name}: cannot open /dev/net/tun: {why}");
        }

        var fd = new SafeFd(raw);
        try
        {
            TapInterop.IfReq req = TapInterop.Named(name);
            req.Flags = (short)((tun is null ? TapInterop.IFF_TAP : TapInterop.IFF_TUN) | TapInterop.IFF_NO_PI | TapInterop.IFF_VNET_HDR | (multiQueue ? TapInterop.IFF_MULTI_QUEUE : 0));
            if (LibC.ioctl(raw, TapInterop.TUNSETIFF, &req) < 0)
            {
                int e = Errno.Last;
                string why = e switch
                {
                    _ when e == LibC.EPERM => "permission denied: needs CAP_NET_ADMIN (run as root or grant the capability)",
                    _ when e == LibC.EBUSY => "the name is taken by another interface or an attached TAP",
                    _ when e == LibC.EINVAL => tun is null ? "the name is taken by an interface that is not a TAP, or the flags were refused" : "the name is taken by an interface that is not a TUN, or the flags were refused",
                    _ => Errno.Describe(e),
                };
                throw new IOException($"{kind} {name}: TUNSETIFF failed: {why}");
            }

            int hdr = VnetHeaderSize;
            Errno.Check(LibC.ioctl(raw, TapInterop.TUNSETVNETHDRSZ, &hdr), $"{kind} {name}: TUNSETVNETHDRSZ");
            return new TapDevice(fd, name, isTap: true, multiQueue, tun);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens the TAP for a link: NO-CARRIER until the peer is there, the given MTU, administratively up
    /// (so addresses can be assigned before the peer arrives).
    /// </summary>
    public static TapDevice OpenForLink(string name, int mtu, TunAddresses? tun = null)
    {
        TapDevice tap = Open(name, tun: tun);
        try
        {
            tap.SetCarrier(false);
            tap.SetMtu(mtu);
            tap.BringUp();
            return tap;
        }
        catch
        {
            tap.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The TAP's queues for a link, <paramref name="queues"/> fds of one interface (IFF_MULTI_QUEUE when more
    /// than one), set up as <see cref="OpenForLink"/> does through the first.
    /// </summary>
    public static TapDevice[] OpenQueuesForLink(string name, int mtu, int queues, TunAddresses? tun = null)
    {
        var taps = new List<TapDevice>(queues);
        try
        {
            for (int q = 0; q < queues; q++)
            {
                taps.Add(Open(name, multiQueue: queues > 1, tun));
            }

            taps[0].SetCarrier(false);
            taps[0].SetMtu(mtu);
            taps[0].BringUp();
            return [.. taps];
        }
        catch
        {
            foreach (TapDevice t in taps)
            {
                t.Dispose();
            }

            throw;
        }
    }

    /// <summary>
    /// Attaches or detaches this queue of a multiqueue TAP (TUNSETQUEUE): the kernel steers no flow to a
    /// detached queue, so a pair the peer does not use holds no frames. Idempotent; a no-op on a plain TAP.
    /// </summary>
    public void SetQueueAttached(bool attached)
    {
        if (!_multiQueue || attached != _detached)
        {
            return;
        }

        TapInterop.IfReq req = default;
        req.Flags = (short)(attached ? TapInterop.IFF_ATTACH_QUEUE : TapInterop.IFF_DETACH_QUEUE);
        Errno.Check(LibC.ioctl(_fd.Fd, TapInterop.TUNSETQUEUE, &req), $"tap {Name}: TUNSETQUEUE({(attached ? "attach" : "detach")})");
        _detached = !attached;
    }

    /// <summary>Checks an interface name the way the kernel will (IFNAMSIZ - 1 bytes, no '/', ':' or whitespace).</summary>
    public static void ValidateName(string name)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw new ArgumentException("tap name is empty");
        }

        if (Encoding.UTF8.GetByteCount(name) > TapInterop.IFNAMSIZ - 1)
        {
            throw new ArgumentException($"tap name '{name}' is longer than {TapInterop.IFNAMSIZ - 1} bytes");
        }

        if (name is "." or ".." || name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || c > 127))
        {
            throw new ArgumentException($"tap name '{name}' contains a character an interface name cannot have");
        }
    }

    /// <summary>Which offloads the kernel may hand us in reads (TUN_F_* bits; 0 = plain frames with full checksums).</summary>
    public void SetOffloads(uint tunFlags)
    {
        RequireTap(nameof(SetOffloads));
        Errno.Check(LibC.ioctl(_fd.Fd, TapInterop.TUNSETOFFLOAD, (int)tunFlags), $"tap {Name}: TUNSETOFFLOAD(0x{tunFlags:x})");
    }

    /// <summary>Carrier on/off (TUNSETCARRIER, Linux ≥ 5.0): NO-CARRIER while the peer is gone.</summary>
    public void SetCarrier(bool on)
    {
        RequireTap(nameof(SetCarrier));
        int v = on ? 1 : 0;
        Errno.Check(LibC.ioctl(_fd.Fd, TapInterop.TUNSETCARRIER, &v), $"tap {Name}: TUNSETCARRIER");
    }

    public void SetMtu(int mtu) => WithSocket(nameof(SetMtu), s =>
    {
        TapInterop.IfReq req = TapInterop.Named(Name);
        req.Mtu = mtu;
        Errno.Check(LibC.ioctl(s, LibC.SIOCSIFMTU, &req), $"tap {Name}: set MTU {mtu}");
    });

    /// <summary>A TAP's MAC (SIOCSIFHWADDR); a TUN has none (its link MAC is <see cref="TunAddresses"/>).</summary>
    public void SetMac(ReadOnlySpan<byte> mac)
    {
        if (_tun is not null)
        {
            throw new InvalidOperationException($"{Name}: a TUN has no MAC");
        }

        byte[] copy = mac.ToArray();
        WithSocket(nameof(SetMac), s =>
        {
            TapInterop.IfReq req = TapInterop.Named(Name);
            req.HwFamily = TapInterop.ARPHRD_ETHER;
            for (int i = 0; i < 6; i++)
            {
                req.HwData[i] = copy[i];
            }

            Errno.Check(LibC.ioctl(s, LibC.SIOCSIFHWADDR, &req), $"tap {Name}: set MAC");
        });
    }

    /// <summary>Sets IFF_UP (administratively up); carrier is separate.</summary>
    public void BringUp() => WithSocket(nameof(BringUp), s =>
    {
        TapInterop.IfReq req = TapInterop.Named(Name);
        Errno.Check(LibC.ioctl(s, LibC.SIOCGIFFLAGS, &req), $"tap {Name}: get flags");
        req.Flags |= TapInterop.IFF_UP;
        Errno.Check(LibC.ioctl(s, LibC.SIOCSIFFLAGS, &req), $"tap {Name}: bring up");
    });

    private void RequireTap(string call)
    {
        if (!_isTap)
        {
            throw new InvalidOperationException($"{Name}: {call} needs a TAP; this device wraps another fd");
        }
    }

    private void WithSocket(string call, Action<int> body)
    {
        RequireTap(call);
        using var s = new SafeFd(Errno.Check(LibC.socket(LibC.AF_INET, LibC.SOCK_DGRAM | LibC.SOCK_CLOEXEC, 0), "socket(AF_INET)"));
        body(s.Fd);
    }

    /// <summary>Reads one frame (vnet header first) into the scatter list; 0 when none is ready, -errno on error.</summary>
    /// <remarks>
    /// Like a TAP read, the result is the frame's full length even when it exceeds the buffers: only what
    /// fits was written, so a result above their total means the frame was cut off and is gone.
    /// </remarks>
    public nint Read(iovec* iov, int count) => _tun is null ? ReadRaw(iov, count) : _tun.Read(this, iov, count);

    /// <summary>Writes one frame (vnet header first) from the gather list; -errno on error, or a TUN end's drop (<see cref="TunFraming.DropBase"/>).</summary>
    public nint Write(iovec* iov, int count) => _tun is null ? WriteRaw(iov, count) : _tun.Write(this, iov, count);

    /// <summary>One read of the descriptor itself (in TUN mode: an IP packet after the header).</summary>
    internal nint ReadRaw(iovec* iov, int count)
    {
        nint n = _isTap ? LibCExtra.readv(_fd.Fd, iov, count) : ReceiveFrame(iov, count);
        return n >= 0 ? n : -Errno.Last;
    }

    /// <summary>One write to the descriptor itself.</summary>
    internal nint WriteRaw(iovec* iov, int count)
    {
        nint n = _isTap ? LibCExtra.writev(_fd.Fd, iov, count) : SendFrame(iov, count);
        return n >= 0 ? n : -Errno.Last;
    }

    // MSG_TRUNC: an AF_UNIX datagram read then returns the message's real length, as tun does.
    private nint ReceiveFrame(iovec* iov, int count)
    {
        var msg = new msghdr { msg_iov = iov, msg_iovlen = count };
        return (nint)LibC.recvmsg(_fd.Fd, &msg, LibC.MSG_DONTWAIT | LibC.MSG_TRUNC);
    }

    private nint SendFrame(iovec* iov, int count)
    {
        var msg = new msghdr { msg_iov = iov, msg_iovlen = count };
        return (nint)LibC.sendmsg(_fd.Fd, &msg, LibC.MSG_DONTWAIT | LibC.MSG_NOSIGNAL);
    }

    public void Dispose() => _fd.Dispose();
}
