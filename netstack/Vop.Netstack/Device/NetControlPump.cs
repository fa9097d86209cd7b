using Vop.Links.Devices;
using Vop.Links.Doorbells;
using Vop.Links.Interop;
using Vop.Links.Rings;
using Vop.Links.Windows;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Device;

/// <summary>
/// The device side's control queue on its own thread (commands are rare; the pairs' pumps never wait on
/// it): answers each command (<see cref="NetControl"/>) and, for a VQ_PAIRS_SET it accepts, hands the new
/// pair count to <c>setPairs</c> before the ack is published, so the driver sees OK only once the pairs
/// are switched (5.1.6.5.5).
/// </summary>
internal sealed class NetControlPump : PumpThread
{
    private const int MaxSegments = 8;
    private readonly WindowAccessor _window;
    private readonly DeviceQueue _queue;
    private readonly EventFdDoorbell _kick;
    private readonly int _maxPairs;
    private readonly Action<int> _setPairs;

    public NetControlPump(string tapName, DeviceQueueSet set, int queue, int maxPairs, Action<int> setPairs)
        : base($"vop-ctl-{tapName}")
    {
        _window = set.Window;
        _queue = set.Queues[queue];
        _kick = set.Kicks[queue];
        _maxPairs = maxPairs;
        _setPairs = setPairs;
    }

    public RingErrorKind Fault => Crash is not null ? RingErrorKind.PumpFault : _queue.Fault;

    protected override void OnCrash(Exception e) => _queue.Stats.RingErrors[(int)RingErrorKind.PumpFault]++;

    protected override void Run()
    {
        using var epoll = new Epoll(2);
        epoll.Add(_kick.Fd);
        epoll.Add(StopBell.Fd);
        Span<BufferSegment> segs = stackalloc BufferSegment[MaxSegments];
        while (!Stopping)
        {
            while (_queue.TryPop(segs, out DescriptorChain chain))
            {
                Serve(segs[..chain.SegmentCount], chain);
            }

            _queue.Publish();
            if (_queue.Fault != RingErrorKind.None)
            {
                return;
            }

            if (_queue.EnableNotifications())
            {
                continue;
            }

            if (epoll.Wait(1000) > 0)
            {
                _kick.Drain();
                _queue.Stats.DoorbellsReceived++;
            }
        }
    }

    private void Serve(ReadOnlySpan<BufferSegment> segs, in DescriptorChain chain)
    {
        int ack = NetControl.AckSegment(segs);
        if (chain.Truncated || ack < 0)
        {
            // No room for an answer: complete it empty, the driver sees a zero-length used entry.
            _queue.Stats.Drops[(int)NetDropReason.NoBuffer]++;
            _queue.PushUsed(chain.Head, 0);
            return;
        }

        byte verdict = NetControl.Decide(_window, segs, chain.ReadableLength, _maxPairs, out int pairs);
        if (verdict == NetControl.Ok)
        {
            _setPairs(pairs);
        }
        else
        {
            _queue.Stats.Drops[(int)NetDropReason.BadHeader]++;
        }

        _window.Bytes(segs[ack].Offset, 1)[0] = verdict;
        _queue.CountConsumed(chain.ReadableLength);
        _queue.PushUsed(chain.Head, 1);
    }
}
