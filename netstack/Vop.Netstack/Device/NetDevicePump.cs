using System.Diagnostics;
using Tmds.Linux;
using Vop.Links.Devices;
using Vop.Links.Interop;
using Vop.Links.Rings;
using Vop.Links.Windows;
using Vop.Netstack.Tap;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Device;

/// <summary>
/// Device-side datapath of one queue pair on its own thread. TAP → receive queue: readv straight into the
/// driver's posted buffer in the window. Transmit queue → TAP: writev straight from the driver's buffer.
/// Sleeps in epoll on the TAP and the two queue doorbells; the TAP is polled only while the driver has
/// receive buffers posted, so a starved queue costs no CPU.
/// </summary>
internal sealed unsafe class NetDevicePump : NetPump
{
    private const int Budget = 64;
    private const int MaxSegments = 64;
    private readonly WindowAccessor _window;
    private readonly DeviceQueue _rx;   // receiveq: device → driver
    private readonly DeviceQueue _tx;   // transmitq: driver → device
    private readonly bool _csumFromDriver;
    private readonly bool _tso4FromDriver;
    private readonly bool _tso6FromDriver;
    private readonly bool _ecnFromDriver;
    private readonly ulong _maxFromDriver;
    private readonly Capture.CaptureRing _capture;
    private readonly MergeableReceiver? _mergeable;
    private readonly int _pair;
    private readonly PairGate? _gate;

    // pair: Which receive/transmit pair of the set (queues 2·pair, 2·pair + 1) this pump serves.
    // gate: With several pairs: how many the driver uses; this pump reads its TAP queue only while below it.
    public NetDevicePump(NetDeviceOptions options, TapDevice tap, DeviceQueueSet set, Capture.CaptureRing capture, int pair = 0, PairGate? gate = null)
        : base(options.Tap, pair, tap, set.Kicks[2 * pair], set.Kicks[(2 * pair) + 1], set.Queues[2 * pair].Stats, set.Queues[(2 * pair) + 1].Stats)
    {
        _capture = capture;
        _window = set.Window;
        _pair = pair;
        _gate = gate;
        _rx = set.Queues[2 * pair];
        _tx = set.Queues[(2 * pair) + 1];
        ulong f = set.Negotiated;
        _csumFromDriver = (f & NetFeatures.Csum) != 0;
        _tso4FromDriver = (f & NetFeatures.HostTso4) != 0;
        _tso6FromDriver = (f & NetFeatures.HostTso6) != 0;
        _ecnFromDriver = (f & NetFeatures.HostEcn) != 0;
        bool gso = _tso4FromDriver || _tso6FromDriver;
        _maxFromDriver = FrameSizes.BufferFor(options.Mtu, gso);
        if ((f & NetFeatures.MrgRxbuf) != 0)
        {
            bool gsoToDriver = (f & (NetFeatures.GuestTso4 | NetFeatures.GuestTso6)) != 0;
            _mergeable = new MergeableReceiver(_rx, tap, capture, FrameSizes.BufferFor(options.Mtu, gsoToDriver));
        }
    }

    protected override RingErrorKind QueueFault => _rx.Fault != RingErrorKind.None ? _rx.Fault : _tx.Fault;

    protected override void Run()
    {
        using Epoll epoll = OpenEpoll();
        using var writes = new TapWriteBatch(Tap, _tx.Stats, Budget);
        WindowAccessor w = _window;
        iovec* iov = stackalloc iovec[2 * MaxSegments]; // [0, 64) the held receive chain, [64, 128) transmit
        Span<BufferSegment> rxSegs = stackalloc BufferSegment[MaxSegments];
        Span<BufferSegment> txSegs = stackalloc BufferSegment[MaxSegments];
        Span<byte> header = stackalloc byte[VirtioNetHeader.Size];
        bool haveRx = false;
        DescriptorChain rxChain = default;
        int rxIov = 0;

        while (!Stopping)
        {
            bool starved = false;
            bool tapEmpty = false;
            int moved = 0;
            long readSince = Stopwatch.GetTimestamp();
            bool rxOn = _gate is null || _pair < _gate.Active;

            // TAP → driver.
            if (_mergeable is not null && rxOn)
            {
                moved = _mergeable.Receive(w, iov, Budget, out starved, out tapEmpty);
            }

            for (int i = 0; i < Budget && _mergeable is null && rxOn; i++)
            {
                if (!haveRx)
                {
                    if (!_rx.TryPop(rxSegs, out rxChain))
                    {
                        starved = true;
                        break;
                    }

                    if (rxChain.Truncated || rxChain.ReadableLength != 0 || rxChain.WritableLength < VirtioNetHeader.Size + 60)
                    {
                        _rx.Stats.Drops[(int)NetDropReason.NoBuffer]++;
                        _rx.PushUsed(rxChain.Head, 0);
                        continue;
                    }

                    rxIov = ChainBytes.ToIovec(w, rxSegs[..rxChain.SegmentCount], iov);
                    haveRx = true;
                }

                nint n = TapReceive.Frame(Tap, iov, rxIov, rxChain.WritableLength, _rx.Stats);
                if (n == 0)
                {
                    tapEmpty = true;
                    break;
                }

                if (n < 0)
                {
                    continue; // the frame did not fit the posted buffer and is gone (counted); the buffer stays ours
                }

                ReadOnlySpan<BufferSegment> segs = rxSegs[..rxChain.SegmentCount];
                ChainBytes.WriteU16(w, segs, VirtioNetHeader.NumBuffersOffset, 1);
                if (_capture.Active)
                {
                    _capture.Offer(w, segs, (int)n, 0);
                }

                _rx.PushUsed(rxChain.Head, (uint)n);
                haveRx = false;
                moved++;
            }

            _rx.Publish();
            if (moved != 0)
            {
                // Frames read this pass waited at most this long between the TAP and the published index.
                _rx.Stats.RecordLatency(Stopwatch.GetTimestamp() - readSince, moved);
            }

            // Driver → TAP.
            for (int i = 0; i < Budget; i++)
            {
                if (!_tx.TryPop(txSegs, out DescriptorChain chain))
                {
                    break;
                }

                moved++;
                ReadOnlySpan<BufferSegment> segs = txSegs[..chain.SegmentCount];
                if (chain.Truncated || chain.WritableLength != 0 || chain.ReadableLength > _maxFromDriver)
                {
                    _tx.Stats.Drops[(int)NetDropReason.Oversize]++;
                }
                else if (chain.ReadableLength < VirtioNetHeader.Size || !ChainBytes.Gather(w, segs, header))
                {
                    _tx.Stats.Drops[(int)NetDropReason.HeaderShort]++;
                }
                else if (VirtioNetHeader.Validate(header, chain.ReadableLength - VirtioNetHeader.Size, _csumFromDriver, _tso4FromDriver, _tso6FromDriver, _ecnFromDriver) != HeaderVerdict.Ok)
                {
                    _tx.Stats.Drops[(int)NetDropReason.BadHeader]++;
                }
                else
                {
                    if (_capture.Active)
                    {
                        _capture.Offer(w, segs, (int)chain.ReadableLength, 1);
                    }

                    int count = ChainBytes.ToIovec(w, segs, iov + MaxSegments);
                    writes.Write(iov + MaxSegments, count);
                }

                _tx.CountConsumed(chain.ReadableLength);
                _tx.PushUsed(chain.Head, 0);
            }

            // The frames must be out of the buffers before the driver may see them used.
            writes.Flush();
            _tx.Publish();
            if (Fault != RingErrorKind.None)
            {
                return; // quarantined: the link supervisor sets NEEDS_RESET and stops us
            }

            if (KeepPolling(moved))
            {
                continue;
            }

            // Arm notifications, re-check, then sleep. The TAP is watched only while we hold a buffer for it.
            bool more = _tx.EnableNotifications();
            if (starved && rxOn)
            {
                more |= _rx.EnableNotifications();
            }

            if (more)
            {
                continue;
            }

            Sleep(epoll, wantTap: rxOn && !starved, tapEmpty);
        }

        _mergeable?.Release();
        if (haveRx)
        {
            // Stopping with a receive buffer in hand: give it back unused, so the driver is not short of it
            // when the device resumes at the avail index we report (vhost-user GET_VRING_BASE).
            _rx.Unpop();
        }
    }
}
