using Tmds.Linux;
using Vop.Links.Rings;
using Vop.Links.Windows;
using Vop.Netstack.Capture;
using Vop.Netstack.Tap;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Device;

/// <summary>
/// TAP → driver with VIRTIO_NET_F_MRG_RXBUF (virtio 1.2 5.1.6.3.1): the driver posts small buffers (a
/// Linux guest: one descriptor of about a page each) and a frame spans as many as it needs. Enough
/// buffers for the largest frame are held before each TAP read, which lands straight in them (one readv
/// over all their segments); the header's num_buffers tells the driver how many the frame used, the rest
/// stay held for the next frame. Used by vhost-user guests; vop's own driver side posts 64 KiB buffers.
/// </summary>
internal sealed unsafe class MergeableReceiver
{
    private const int MaxChains = 64;
    private const int MaxIov = 64;                 // the pump's receive iovec array
    private const int MaxSegmentsPerChain = 4;
    private readonly DeviceQueue _rx;
    private readonly TapDevice _tap;
    private readonly CaptureRing _capture;
    private readonly ulong _need;                 // header + largest frame the TAP may hand us
    private readonly ushort[] _heads = new ushort[MaxChains];
    private readonly uint[] _lengths = new uint[MaxChains];
    private readonly int[] _firstSegment = new int[MaxChains + 1];
    private readonly BufferSegment[] _segments = new BufferSegment[MaxChains * MaxSegmentsPerChain];
    private int _held;
    private ulong _heldBytes;
    private bool _contiguous = true;              // held chains are exactly the last ones popped

    public MergeableReceiver(DeviceQueue rx, TapDevice tap, CaptureRing capture, ulong need)
    {
        _rx = rx;
        _tap = tap;
        _capture = capture;
        _need = need;
    }

    /// <summary>Moves up to <paramref name="budget"/> frames; says whether the ring ran short or the TAP ran dry.</summary>
    public int Receive(in WindowAccessor w, iovec* iov, int budget, out bool starved, out bool tapEmpty)
    {
        starved = false;
        tapEmpty = false;
        int moved = 0;
        Span<BufferSegment> popped = stackalloc BufferSegment[MaxSegmentsPerChain];
        for (int i = 0; i < budget; i++)
        {
            while (_heldBytes < _need && _held < MaxChains && _firstSegment[_held] + MaxSegmentsPerChain <= MaxIov)
            {
                if (!_rx.TryPop(popped, out DescriptorChain chain))
                {
                    starved = true;
                    break;
                }

                // Every buffer must be able to start a frame: device-writable only, the 12-byte header in
                // its first segment (Linux posts one descriptor of at least 1.5 KiB per buffer).
                if (chain.Truncated || chain.ReadableLength != 0 || popped[0].Length < VirtioNetHeader.Size)
                {
                    _rx.Stats.Drops[(int)NetDropReason.NoBuffer]++;
                    _rx.PushUsed(chain.Head, 0);
                    _contiguous &= _held == 0;
                    continue;
                }

                int at = _firstSegment[_held];
                popped[..chain.SegmentCount].CopyTo(_segments.AsSpan(at));
                _heads[_held] = chain.Head;
                _lengths[_held] = (uint)Math.Min(chain.WritableLength, uint.MaxValue);
                _heldBytes += chain.WritableLength;
                _held++;
                _firstSegment[_held] = at + chain.SegmentCount;
            }

            if (_heldBytes < _need)
            {
                starved = true; // not enough room for the largest frame yet: wait for more buffers
                break;
            }

            int count = _firstSegment[_held];
            ChainBytes.ToIovec(w, _segments.AsSpan(0, count), iov);
            nint n = TapReceive.Frame(_tap, iov, count, _heldBytes, _rx.Stats);
            if (n == 0)
            {
                tapEmpty = true;
                break;
            }

            if (n < 0)
            {
                continue;
            }

            // The frame filled buffers 0..used-1 in order; the last one partly.
            int used = 0;
            ulong left = (ulong)n;
            while (left > 0)
            {
                left -= Math.Min(left, _lengths[used]);
                used++;
            }

            w.WriteU16(_segments[0].Offset + VirtioNetHeader.NumBuffersOffset, (ushort)used);
            if (_capture.Active)
            {
                _capture.Offer(w, _segments.AsSpan(0, count), (int)n, 0);
            }

            left = (ulong)n;
            for (int c = 0; c < used; c++)
            {
                uint take = (uint)Math.Min(left, _lengths[c]);
                _rx.PushUsed(_heads[c], take);
                _heldBytes -= _lengths[c];
                left -= take;
            }

            Shift(used);
            moved++;
        }

        return moved;
    }

    /// <summary>The pump stops: give held buffers back (un-pop them when they are the last popped, else complete them empty).</summary>
    public void Release()
    {
        if (_contiguous)
        {
            for (int c = 0; c < _held; c++)
            {
                _rx.Unpop();
            }
        }
        else
        {
            for (int c = 0; c < _held; c++)
            {
                _rx.PushUsed(_heads[c], 0);
            }

            _rx.Publish();
        }

        _held = 0;
        _heldBytes = 0;
    }

    /// <summary>Drops the first <paramref name="used"/> held chains; the rest move to the front.</summary>
    private void Shift(int used)
    {
        int from = _firstSegment[used];
        int segs = _firstSegment[_held] - from;
        Array.Copy(_segments, from, _segments, 0, segs);
        for (int c = used; c < _held; c++)
        {
            _heads[c - used] = _heads[c];
            _lengths[c - used] = _lengths[c];
            _firstSegment[c - used + 1] = _firstSegment[c + 1] - from;
        }

        _held -= used;
        _firstSegment[0] = 0;
        if (_held == 0)
        {
            _contiguous = true;
        }
    }
}
