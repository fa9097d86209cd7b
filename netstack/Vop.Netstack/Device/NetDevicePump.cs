using System.Diagnostics;
using Tmds.Linux;
using Vop.Links.Devices;
using Vop.Links.Doorbells;
using Vop.Links.Interop;
using Vop.Links.Rings;
using Vop.Links.Windows;
using Vop.Metrics;
using Vop.Netstack.Tap;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Device;

/// <summary>
/// Device-side datapath of one queue pair on its own thread. TAP → receive queue: readv straight into the
/// driver's posted buffer in the window. Transmit queue → TAP: writev straight from the driver's buffer.
/// Sleeps in epoll on the TAP and the two queue doorbells; the TAP is polled only while the driver has
/// receive buffers posted, so a starved queue costs no CPU.
/// </summary>
internal sealed unsafe class NetDevicePump : PumpThread
{
    private const int Budget = 64;
    private const int MaxSegments = 64;
    // After traffic, keep polling this long before sleeping: a reply usually comes back sooner than an
    // eventfd wake-up takes (tens of microseconds here), so request/response latency skips two wakes.
    // An idle pump sleeps: the spin only follows work.
    private static readonly long s_spinTicks = PollWindow.Ticks;

    private readonly NetDeviceOptions _options;
    private readonly TapDevice _tap;
    private readonly DeviceSession _session;
    private readonly DeviceQueue _rx;   // receiveq: device → driver
    private readonly DeviceQueue _tx;   // transmitq: driver → device
    private readonly EventFdDoorbell _rxKick;
    private readonly EventFdDoorbell _txKick;
    private readonly bool _csumFromDriver;
    private readonly bool _tso4FromDriver;
    private readonly bool _tso6FromDriver;
    private readonly bool _ecnFromDriver;
    private readonly ulong _maxFromDriver;
    private readonly long[] _gso = new long[2];

    private readonly Capture.CaptureRing _capture;

    public NetDevicePump(NetDeviceOptions options, TapDevice tap, DeviceSession session, IReadOnlyList<QueueStats> stats, Capture.CaptureRing capture)
        : base($"vop-net-{options.Tap}")
    {
        _capture = capture;
        _options = options;
        _tap = tap;
        _session = session;
        _rx = session.Queues[0];
        _tx = session.Queues[1];
        _rxKick = session.End.LocalDoorbell(session.Slot.Vectors[0]);
        _txKick = session.End.LocalDoorbell(session.Slot.Vectors[1]);
        ulong f = session.Negotiated;
        _csumFromDriver = (f & NetFeatures.Csum) != 0;
        _tso4FromDriver = (f & NetFeatures.HostTso4) != 0;
        _tso6FromDriver = (f & NetFeatures.HostTso6) != 0;
        _ecnFromDriver = (f & NetFeatures.HostEcn) != 0;
        bool gso = _tso4FromDriver || _tso6FromDriver;
        _maxFromDriver = (ulong)VirtioNetHeader.Size + (ulong)(gso ? FrameSizes.MaxGsoFrame : options.Mtu + 18);
        _ = stats;
    }

    public RingErrorKind Fault => _rx.Fault != RingErrorKind.None ? _rx.Fault : _tx.Fault;

    public long[] GsoFrames => _gso;

    protected override void Run()
    {
        using var epoll = new Epoll(8);
        epoll.Add(_tap.Fd);
        epoll.Add(_rxKick.Fd);
        epoll.Add(_txKick.Fd);
        epoll.Add(StopBell.Fd);
        bool tapInterest = true;
        WindowAccessor w = _session.End.Window.Accessor;
        iovec* iov = stackalloc iovec[2 * MaxSegments]; // [0, 64) the held receive chain, [64, 128) transmit
        Span<BufferSegment> rxSegs = stackalloc BufferSegment[MaxSegments];
        Span<BufferSegment> txSegs = stackalloc BufferSegment[MaxSegments];
        Span<byte> header = stackalloc byte[VirtioNetHeader.Size];
        bool haveRx = false;
        DescriptorChain rxChain = default;
        int rxIov = 0;
        long lastWork = Stopwatch.GetTimestamp();

        while (!Stopping)
        {
            bool starved = false;
            bool tapEmpty = false;
            int moved = 0;
            long readSince = Stopwatch.GetTimestamp();

            // TAP → driver.
            for (int i = 0; i < Budget; i++)
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

                nint n = _tap.Read(iov, rxIov);
                if (n == -Errno.EAGAIN || n == 0)
                {
                    tapEmpty = true;
                    break;
                }

                if (n < 0)
                {
                    // EFAULT-like errors: the frame did not fit the posted buffer; the kernel dropped it.
                    _rx.Stats.Drops[(int)NetDropReason.Oversize]++;
                    continue;
                }

                ReadOnlySpan<BufferSegment> segs = rxSegs[..rxChain.SegmentCount];
                ChainBytes.WriteU16(w, segs, 10, 1); // num_buffers
                if (_capture.Active)
                {
                    _capture.Offer(w, segs, (int)n, 0, 0);
                }

                if (segs[0].Length >= 2 && w.ReadU8(segs[0].Offset + 1) != VirtioNetHeader.GsoNone)
                {
                    _gso[0]++;
                }

                _rx.PushUsed(rxChain.Head, (uint)n);
                haveRx = false;
                moved++;
            }

            _rx.Publish();
            if (moved != 0)
            {
                // Frames read this pass waited at most this long between the TAP and the published index.
                LatencyHistogram.Record(_rx.Stats, Stopwatch.GetTimestamp() - readSince, moved);
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
                    if (header[1] != VirtioNetHeader.GsoNone)
                    {
                        _gso[1]++;
                    }

                    if (_capture.Active)
                    {
                        _capture.Offer(w, segs, (int)chain.ReadableLength, 1, 1);
                    }

                    int count = ChainBytes.ToIovec(w, segs, iov + MaxSegments);
                    if (_tap.Write(iov + MaxSegments, count) < 0)
                    {
                        _tx.Stats.Drops[(int)NetDropReason.TapError]++;
                    }
                }

                _tx.CountConsumed(chain.ReadableLength);
                _tx.PushUsed(chain.Head, 0);
            }

            _tx.Publish();
            if (Fault != RingErrorKind.None)
            {
                return; // quarantined: the link supervisor sets NEEDS_RESET and stops us
            }

            if (moved != 0)
            {
                lastWork = Stopwatch.GetTimestamp();
                CountBusyLoop();

                continue;
            }

            if (Stopwatch.GetTimestamp() - lastWork < s_spinTicks)
            {
                Thread.Yield();
                continue;
            }

            // Arm notifications, re-check, then sleep. The TAP is watched only while we hold a buffer for it.
            bool more = _tx.EnableNotifications();
            if (starved)
            {
                more |= _rx.EnableNotifications();
            }

            if (more)
            {
                continue;
            }

            bool wantTap = !starved;
            if (wantTap != tapInterest)
            {
                epoll.SetReadable(_tap.Fd, wantTap);
                tapInterest = wantTap;
            }

            if (!tapEmpty && wantTap)
            {
                continue;
            }

            int ready = epoll.Wait(1000);
            for (int i = 0; i < ready; i++)
            {
                int fd = epoll.ReadyFd(i);
                if (fd == _rxKick.Fd)
                {
                    _rxKick.Drain();
                    _rx.Stats.DoorbellsReceived++;
                }
                else if (fd == _txKick.Fd)
                {
                    _txKick.Drain();
                    _tx.Stats.DoorbellsReceived++;
                }
            }
        }
    }
}
