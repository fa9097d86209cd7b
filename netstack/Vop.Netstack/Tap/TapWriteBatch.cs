using System.Runtime.InteropServices;
using Tmds.Linux;
using Vop.Links.Interop;

namespace Vop.Netstack.Tap;

/// <summary>
/// A pump pass's TAP writes, gathered and handed to the kernel in one io_uring_enter at <see cref="Flush"/>
/// instead of one writev each (VOP_TAP_URING=1; otherwise each write goes out at once). The frames' bytes
/// stay in the window until then, so the pump must flush before it publishes the buffers back to the peer.
/// </summary>
internal sealed unsafe class TapWriteBatch : IDisposable
{
    private const int PoolSegments = 256;
    private readonly TapDevice _tap;
    private readonly IoUring? _ring;
    private readonly iovec* _pool;
    private int _poolUsed;
    private int _failed;

    public TapWriteBatch(TapDevice tap, uint entries)
    {
        _tap = tap;
        if (Enabled)
        {
            _ring = new IoUring(entries);
            _pool = (iovec*)NativeMemory.Alloc(PoolSegments, (nuint)sizeof(iovec));
        }
    }

    public static bool Enabled { get; } = Environment.GetEnvironmentVariable("VOP_TAP_URING") == "1";

    /// <summary>Writes one frame (vnet header first) from the gather list, now or at the next <see cref="Flush"/>.</summary>
    public void Write(iovec* iov, int count)
    {
        if (_ring is null)
        {
            if (_tap.Write(iov, count) < 0)
            {
                _failed++;
            }

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

    /// <summary>Hands every gathered write to the kernel and waits for all; returns how many failed since the last flush.</summary>
    public int Flush()
    {
        if (_ring is not null)
        {
            Submit();
        }

        int failed = _failed;
        _failed = 0;
        return failed;
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
                _failed++;
            }
        }

        _poolUsed = 0;
    }
}
