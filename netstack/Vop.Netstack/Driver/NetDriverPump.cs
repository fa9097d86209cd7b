using Tmds.Linux;
using Vop.Links.Devices;
using Vop.Links.Interop;
using Vop.Links.Rings;
using Vop.Links.Transport;
using Vop.Links.Windows;
using Vop.Netstack.Device;
using Vop.Netstack.Tap;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Driver;

/// <summary>
/// Driver-side datapath of one queue pair on its own thread. Receive: used buffers are validated and
/// written to the TAP straight from the window, then reposted. Transmit: the TAP is read straight into a
/// free transmit buffer in the window, which is then made available. One buffer per frame (no MRG_RXBUF);
/// buffers are sized for 64 KiB GSO frames when TSO is negotiated.
/// </summary>
internal sealed unsafe class NetDriverPump : NetPump
{
    private const int Budget = 64;
    private readonly DriverSession _session;
    private readonly DriverQueue _rx;
    private readonly DriverQueue _tx;
    private readonly ulong _rxBase;
    private readonly ulong _txBase;
    private readonly uint _rxSize;
    private readonly uint _txSize;
    private readonly ulong _rxStride;
    private readonly ulong _txStride;
    private readonly bool _csum;
    private readonly bool _tso4;
    private readonly bool _tso6;
    private readonly bool _ecn;
    private readonly Capture.CaptureRing _capture;

    // pair: Which receive/transmit pair of the session (queues 2·pair, 2·pair + 1) this pump serves; its buffers are carved here.
    public NetDriverPump(string tapName, TapDevice tap, DriverSession session, int mtu, Capture.CaptureRing capture, int pair = 0)
        : base(tapName, pair, tap, session.End.LocalDoorbell(session.Slot.Vectors[2 * pair]), session.End.LocalDoorbell(session.Slot.Vectors[(2 * pair) + 1]), session.Queues[2 * pair].Stats, session.Queues[(2 * pair) + 1].Stats)
    {
        _capture = capture;
        _session = session;
        _rx = session.Queues[2 * pair];
        _tx = session.Queues[(2 * pair) + 1];
        ulong f = session.Negotiated;
        _csum = (f & NetFeatures.GuestCsum) != 0;
        _tso4 = (f & NetFeatures.GuestTso4) != 0;
        _tso6 = (f & NetFeatures.GuestTso6) != 0;
        _ecn = (f & NetFeatures.GuestEcn) != 0;
        _rxSize = FrameSizes.BufferFor(mtu, _tso4 || _tso6);
        _txSize = FrameSizes.BufferFor(mtu, (f & (NetFeatures.HostTso4 | NetFeatures.HostTso6)) != 0);
        _rxStride = BufferCarver.Stride(_rxSize);
        _txStride = BufferCarver.Stride(_txSize);
        _rxBase = session.Buffers.Carve(_rx.Size, _rxSize);
        _txBase = session.Buffers.Carve(_tx.Size, _txSize);
    }

    protected override RingErrorKind QueueFault => _rx.Fault != RingErrorKind.None ? _rx.Fault : _tx.Fault;

    protected override void Run()
    {
        WindowAccessor w = _session.End.Window.Accessor;
        int rxCount = _rx.Size;
        int txCount = _tx.Size;
        var rxBufferOfHead = new ushort[rxCount];
        var txBufferOfHead = new ushort[txCount];
        var txLength = new uint[txCount];
        var txFree = new Stack<ushort>(txCount);
        for (int i = txCount - 1; i >= 0; i--)
        {
            txFree.Push((ushort)i);
        }

        for (ushort b = 0; b < rxCount; b++)
        {
            if (_rx.TryAdd(new BufferSegment(_rxBase + (b * _rxStride), _rxSize, true), out ushort head))
            {
                rxBufferOfHead[head] = b;
            }
        }

        _rx.Publish();

        using Epoll epoll = OpenEpoll();
        using var writes = new TapWriteBatch(Tap, _rx.Stats, Budget);
        iovec iov = default;

        while (!Stopping)
        {
            int moved = 0;
            bool tapEmpty = false;

            // Device → TAP.
            for (int i = 0; i < Budget && _rx.TryReap(out UsedElement used); i++)
            {
                ushort b = rxBufferOfHead[used.Head];
                ulong off = _rxBase + (b * _rxStride);
                if (!used.LengthValid || used.Length < VirtioNetHeader.Size + 14)
                {
                    _rx.Stats.Drops[(int)NetDropReason.HeaderShort]++;
                }
                else if (VirtioNetHeader.Validate(w.Bytes(off, VirtioNetHeader.Size), used.Length - (ulong)VirtioNetHeader.Size, _csum, _tso4, _tso6, _ecn) != HeaderVerdict.Ok)
                {
                    _rx.Stats.Drops[(int)NetDropReason.BadHeader]++;
                }
                else
                {
                    if (_capture.Active)
                    {
                        _capture.Offer(w, [new BufferSegment(off, used.Length, true)], (int)used.Length, 0);
                    }

                    iov.iov_base = w.Address(off, used.Length);
                    iov.iov_len = (size_t)used.Length;
                    writes.Write(&iov, 1);
                }

                _rx.TryAdd(new BufferSegment(off, _rxSize, true), out ushort again);
                rxBufferOfHead[again] = b;
                moved++;
            }

            // The frames must be out of the buffers before the device may fill them again.
            writes.Flush();
            _rx.FlushReapStats();
            _rx.Publish();

            // Transmit completions.
            ulong consumed = 0;
            while (_tx.TryReap(out UsedElement done))
            {
                txFree.Push(txBufferOfHead[done.Head]);
                consumed += txLength[done.Head];
            }

            _tx.FlushReapStats(consumed);

            // TAP → device.
            for (int i = 0; i < Budget && txFree.Count > 0; i++)
            {
                ushort b = txFree.Pop();
                ulong off = _txBase + (b * _txStride);
                iov.iov_base = w.Address(off, _txSize);
                iov.iov_len = (size_t)_txSize;
                nint n = TapReceive.Frame(Tap, &iov, 1, _txSize, _tx.Stats);
                if (n <= 0)
                {
                    txFree.Push(b);
                    if (n < 0)
                    {
                        continue; // counted as oversize: a failed read or a cut-off frame
                    }

                    tapEmpty = true;
                    break;
                }

                if (_capture.Active)
                {
                    _capture.Offer(w, [new BufferSegment(off, (uint)n, false)], (int)n, 1);
                }

                _tx.TryAdd(new BufferSegment(off, (uint)n, false), out ushort head);
                txBufferOfHead[head] = b;
                txLength[head] = (uint)n;
                moved++;
            }

            _tx.Publish();
            if (Fault != RingErrorKind.None)
            {
                return;
            }

            if (KeepPolling(moved))
            {
                continue;
            }

            // Arm, re-check, then sleep; the TAP is watched only while a transmit buffer is free.
            bool more = _rx.EnableInterrupts();
            if (txFree.Count == 0)
            {
                more |= _tx.EnableInterrupts();
            }

            if (more)
            {
                continue;
            }

            Sleep(epoll, wantTap: txFree.Count > 0, tapEmpty);
        }
    }
}
