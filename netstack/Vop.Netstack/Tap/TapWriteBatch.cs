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
    private int _poolUsed;

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
    }

    /// <summary>False with VOP_TAP_URING=0 (for comparisons): every frame is written by its own writev.</summary>
    public static bool Enabled { get; } = Environment.GetEnvironmentVariable("VOP_TAP_URING") != "0";

    /// <summary>Whether writes are gathered into io_uring submissions.</summary>
    public bool Batched => _ring is not null;

    /// <summary>Writes one frame (vnet header first) from the gather list, now or at the next <see cref="Flush"/>.</summary>
    public void Write(iovec* iov, int count)
    {
        if (_ring is null)
        {
            TapSend.Frame(_tap, iov, count, _stats);
            return;
        }

        if (_poolUsed + count > PoolSegments || _ring.Queued == _ring.Capacity)
        {
            Submit();
        }

        iovec* copy = _pool + _poolUsed;
        new ReadOnlySpan<iovec>(iov, count).CopyTo(new Span<iovec>(copy, count));
        _poolUsed += count;
        _ring.QueueWritev(_tap.Fd, copy, count);
    }

    /// <summary>Hands every gathered write to the kernel and waits for all; a failed one is counted as tap_error.</summary>
    public void Flush()
    {
        if (_ring is not null)
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
        }
    }

    private void Submit()
    {
        int n = _ring!.SubmitAndWait();
        for (int i = 0; i < n; i++)
        {
            if (_ring.Result(i) < 0)
            {
                _stats.Drops[(int)NetDropReason.TapError]++;
            }
        }

        _poolUsed = 0;
    }
}
