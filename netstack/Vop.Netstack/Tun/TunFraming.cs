using System.Buffers.Binary;
using Tmds.Linux;
using Vop.Netstack.Tap;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Tun;

/// <summary>
/// One TUN queue's side of the link's Ethernet framing. The link carries Ethernet frames whatever each end
/// is; a TUN reads and writes bare IP packets. Toward the link (<see cref="Read"/>): the TUN is read into
/// the window leaving a 14-byte hole after the 12-byte virtio_net_hdr, the Ethernet header is written into
/// the hole, and csum_start / hdr_len (which count from the packet's start) move up by 14. From the link
/// (<see cref="Write"/>): IPv4 and IPv6 frames go to the TUN from past their Ethernet header with a
/// header copy whose csum_start / hdr_len move down by 14 (the payload is not copied, and the header the
/// kernel reads is the one checked here, not the window's); ARP requests and neighbour solicitations are
/// answered (<see cref="NeighbourResponder"/>), the answer queued here and handed to the next read; other
/// frames are dropped. A drop comes back as <see cref="Dropped"/> of its reason, never an exception.
/// Used only by its queue's pump thread; allocates only in its constructor.
/// </summary>
internal sealed unsafe class TunFraming
{
    /// <summary>Results at or below this are drops decided here, not errnos: <c>DropBase - reason</c>.</summary>
    public const nint DropBase = -0x10000;

    private const int VnetHeader = VirtioNetHeader.Size;
    private const int Pending = 4;
    private const int Slot = VnetHeader + NeighbourResponder.MaxReply;
    private const int Inspect = Ethernet.HeaderSize + 40 + 24;   // an IPv6 header and a solicitation
    private readonly TunAddresses _addresses;
    private readonly byte[] _replies = new byte[Pending * Slot];
    private readonly int[] _replyLength = new int[Pending];
    private int _first;
    private int _queued;

    public TunFraming(TunAddresses addresses) => _addresses = addresses;

    public TunAddresses Addresses => _addresses;

    /// <summary>Answers waiting for the next read (tests).</summary>
    public int Queued => _queued;

    public static nint Dropped(NetDropReason reason) => DropBase - (int)reason;

    /// <summary>The drop reason of a read or write result at or below <see cref="DropBase"/>.</summary>
    public static NetDropReason ReasonOf(nint result) => (NetDropReason)(DropBase - result);

    /// <summary>
    /// One frame for the link into the scatter list (virtio_net_hdr first): a queued answer, else a TUN
    /// packet framed in place. The result is what <c>readv</c> of a TAP returns: the frame's full length
    /// (above the list's length when cut off), 0 when nothing is ready, -errno, or a drop.
    /// </summary>
    public nint Read(TapDevice tun, iovec* iov, int count)
    {
        ulong capacity = Iovecs.Length(iov, count);
        if (_queued != 0)
        {
            int length = _replyLength[_first];
            Iovecs.CopyIn(iov, count, 0, _replies.AsSpan(_first * Slot, length));
            _first = (_first + 1) % Pending;
            _queued--;
            return length;
        }

        if (capacity < VnetHeader + Ethernet.HeaderSize + 1)
        {
            return Dropped(NetDropReason.NoBuffer); // never: both pumps hold at least 72 bytes
        }

        iovec* holed = stackalloc iovec[count + 1];
        int n = Iovecs.WithHole(iov, count, VnetHeader, Ethernet.HeaderSize, holed);
        nint got = tun.ReadRaw(holed, n);
        if (got <= 0)
        {
            return got;
        }

        nint total = got + Ethernet.HeaderSize;
        if ((ulong)total > capacity)
        {
            return total; // cut off: the caller drops it as oversize
        }

        if (got < VnetHeader + 1)
        {
            return Dropped(NetDropReason.NotIp);
        }

        Span<byte> header = stackalloc byte[VnetHeader + Ethernet.HeaderSize + 1];
        Iovecs.CopyOut(iov, count, 0, header);
        ushort type = Ethernet.TypeOfIp(header[VnetHeader + Ethernet.HeaderSize]);
        if (type == 0)
        {
            return Dropped(NetDropReason.NotIp);
        }

        if (!Shift(header[..VnetHeader], Ethernet.HeaderSize))
        {
            return Dropped(NetDropReason.BadHeader);
        }

        TunAddresses a = _addresses;
        Ethernet.WriteHeader(header[VnetHeader..], a.Peer, a.Own, type);
        Iovecs.CopyIn(iov, count, 0, header[..(VnetHeader + Ethernet.HeaderSize)]);
        return total;
    }

    /// <summary>
    /// One frame from the link (virtio_net_hdr first, already validated against the frame's length by the
    /// pump): to the TUN without its Ethernet header, answered, or dropped. The frame's length when it
    /// was consumed, -errno when the TUN refused it, or a drop.
    /// </summary>
    public nint Write(TapDevice tun, iovec* iov, int count)
    {
        ulong length = Iovecs.Length(iov, count);
        Span<byte> head = stackalloc byte[VnetHeader + Inspect];
        int got = Iovecs.CopyOut(iov, count, 0, head);
        if (got < VnetHeader + Ethernet.HeaderSize)
        {
            return Dropped(NetDropReason.HeaderShort);
        }

        ReadOnlySpan<byte> frame = head[VnetHeader..got];
        ulong own = _addresses.Own;
        ulong destination = Ethernet.Mac(frame);
        ulong source = Ethernet.Mac(frame[6..]);
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        if (type == Ethernet.TypeArp || (type == Ethernet.TypeIPv6 && NeighbourResponder.IsSolicitation(frame)))
        {
            Span<byte> reply = stackalloc byte[NeighbourResponder.MaxReply];
            int n = type == Ethernet.TypeArp ? NeighbourResponder.AnswerArp(frame, own, reply) : NeighbourResponder.AnswerSolicitation(frame, own, reply);
            if (n > 0)
            {
                _addresses.Learn(source);
                Queue(reply[..n]);
            }

            // A solicitation is consumed either way (the TUN has no neighbours); an unanswered ARP frame is not IP.
            return n > 0 || type == Ethernet.TypeIPv6 ? (nint)length : Dropped(NetDropReason.NotIp);
        }

        if (type != Ethernet.TypeIPv4 && type != Ethernet.TypeIPv6)
        {
            return Dropped(NetDropReason.NotIp);
        }

        if (!Ethernet.IsGroup(destination) && destination != own)
        {
            return Dropped(NetDropReason.OtherHost); // a NIC takes unicast for its own MAC only
        }

        _addresses.Learn(source);
        byte* header = stackalloc byte[VnetHeader];
        var local = new Span<byte>(header, VnetHeader);
        head[..VnetHeader].CopyTo(local);
        if (!Shift(local, -Ethernet.HeaderSize))
        {
            return Dropped(NetDropReason.BadHeader);
        }

        iovec* out_ = stackalloc iovec[count + 1];
        out_[0] = new iovec { iov_base = header, iov_len = VnetHeader };
        int m = Iovecs.WithHole(iov, count, 0, VnetHeader + Ethernet.HeaderSize, out_ + 1);
        return tun.WriteRaw(out_, m + 1);
    }

    /// <summary>
    /// Moves csum_start (with NEEDS_CSUM) and hdr_len (when set) by <paramref name="by"/>: +14 toward the
    /// link, -14 toward the TUN. False when csum_start would leave 0..65535 or point into the Ethernet
    /// header, which no honest peer sends. An hdr_len inside the Ethernet header becomes 0 (the kernel
    /// works it out itself: it is a hint).
    /// </summary>
    public static bool Shift(Span<byte> header, int by)
    {
        if ((header[0] & VirtioNetHeader.FlagNeedsCsum) != 0)
        {
            int start = BinaryPrimitives.ReadUInt16LittleEndian(header[6..]) + by;
            if (start < 0 || start > ushort.MaxValue)
            {
                return false;
            }

            BinaryPrimitives.WriteUInt16LittleEndian(header[6..], (ushort)start);
        }

        int hdrLen = BinaryPrimitives.ReadUInt16LittleEndian(header[2..]);
        if (hdrLen != 0)
        {
            int moved = hdrLen + by;
            if (moved > ushort.MaxValue)
            {
                return false;
            }

            BinaryPrimitives.WriteUInt16LittleEndian(header[2..], (ushort)Math.Max(moved, 0));
        }

        return true;
    }

    /// <summary>Keeps an answer for the next read, the vnet header all zero; the oldest goes when all slots are taken.</summary>
    private void Queue(ReadOnlySpan<byte> frame)
    {
        if (_queued == Pending)
        {
            _first = (_first + 1) % Pending;
            _queued--;
        }

        int slot = (_first + _queued) % Pending;
        Span<byte> s = _replies.AsSpan(slot * Slot, Slot);
        s[..VnetHeader].Clear();
        frame.CopyTo(s[VnetHeader..]);
        _replyLength[slot] = VnetHeader + frame.Length;
        _queued++;
    }
}
