using System.Runtime.InteropServices;
using Tmds.Linux;
using Vop.Links.Interop;
using Vop.Links.Stats;
using Vop.Netstack.Device;

namespace Vop.Netstack.Tap;

/// <summary>
/// A pump pass's TAP writes, gathered and handed to the kernel in one io_uring_enter at <see cref="Flush"/>
/// instead of one writev system call each: on a small-packet stream the system call, not the copy, is most
/// of a frame's cost (docs/benchmarks.md, "io_uring"). The frames' bytes stay in the window until the flush,
/// so a pump must flush before it publishes their buffers back to the peer. Where io_uring cannot be set up
/// (kernel.io_uring_disabled, a seccomp filter, an old kernel), for a TUN end (its framing writes a header
/// copy from the stack) or with VOP_TAP_URING=0, each frame is written at once as before.
/// </summary>
internal sealed unsafe class TapWriteBatch : IDisposable
{
    private const int PoolSegments = 256;
    private readonly TapDevice _tap;
    private readonly QueueStats _stats;
    private readonly IoUring? _ring;
    private readonly iovec* _pool;
    private readonly int* _frameStart; // per queued write: its first segment in the pool
    private readonly int* _frameCount;
    private int _poolUsed;
    private int _frames;      // gathered since the last submission
    private bool _fallBack;

    public TapWriteBatch(TapDevice tap, QueueStats stats, uint entries)
    {
        _tap = tap;
        _stats = stats;
        if (!Enabled || tap.Mode != NetMode.Tap)
        {
            return;
        }

        try
        {
            _ring = new IoUring(entries);
        }
        catch (IOException)
        {
            return; // io_uring_setup refused: write frame by frame
        }

        _pool = (iovec*)NativeMemory.Alloc(PoolSegments, (nuint)sizeof(iovec));
        _frameStart = (int*)NativeMemory.Alloc((nuint)_ring.Capacity, sizeof(int));
        _frameCount = (int*)NativeMemory.Alloc((nuint)_ring.Capacity, sizeof(int));
    }

    /// <summary>False with VOP_TAP_URING=0 (for comparisons): every frame is written by its own writev.</summary>
    public static bool Enabled { get; } = Environment.GetEnvironmentVariable("VOP_TAP_URING") != "0";

    /// <summary>Whether writes are gathered into io_uring submissions.</summary>
    public bool Batched => _ring is not null && !_fallBack;

    /// <summary>
    /// The errno of a batched write that failed where the same frame written by writev then went out (the
    /// kernel's io_uring path does not work for this fd, e.g. RWF_NOWAIT unsupported): from then on every
    /// frame is written by writev. 0 while batching works.
    /// </summary>
    public int FallBackErrno { get; private set; }

    /// <summary>Writes one frame (vnet header first) from the gather list, now or at the next <see cref="Flush"/>.</summary>
    public void Write(iovec* iov, int count)
    {
        if (_ring is null || _fallBack)
        {
            _ = TapSend.Frame(_tap, iov, count, _stats);
            return;
        }

        if (_poolUsed + count > PoolSegments || _frames == _ring.Capacity)
        {
            Submit();
        }

        new ReadOnlySpan<iovec>(iov, count).CopyTo(new Span<iovec>(_pool + _poolUsed, count));
        _frameStart[_frames] = _poolUsed;
        _frameCount[_frames] = count;
        _poolUsed += count;
        _frames++;
    }

    /// <summary>Hands every gathered write to the kernel and waits for all; a failed one is counted as tap_error.</summary>
    public void Flush()
    {
        if (_ring is not null && _frames != 0)
        {
            Submit();
        }
    }

    public void Dispose()
    {
        _ring?.Dispose();
        if (_pool != null)
        {
            NativeMemory.Free(_pool);
            NativeMemory.Free(_frameStart);
            NativeMemory.Free(_frameCount);
        }
    }

    private void Submit()
    {
        int n = _frames;
        _frames = 0;
        _poolUsed = 0;
        if (n == 1)
        {
            // A lone frame (a ping, a request): one writev costs less than an io_uring round trip (measured
            // ~15 µs more idle RTT through io_uring); batches are where io_uring pays.
            _ = TapSend.Frame(_tap, _pool + _frameStart[0], _frameCount[0], _stats);
            return;
        }

        for (int i = 0; i < n; i++)
        {
            _ring!.QueueWritev(_tap.Fd, _pool + _frameStart[i], _frameCount[i]);
        }

        _ring!.SubmitAndWait();
        for (int i = 0; i < n; i++)
        {
            int result = _ring.Result(i);
            if (result < 0)
            {
                // Once more by writev (the frame is still in the window: not yet published). If that goes
                // out, io_uring is what failed: write frame by frame from now on. Else it is counted once.
                if (TapSend.Frame(_tap, _pool + _frameStart[i], _frameCount[i], _stats) && result != -LibC.EAGAIN)
                {
                    _fallBack = true;
                    FallBackErrno = -result;
                }
            }
        }
    }
}
