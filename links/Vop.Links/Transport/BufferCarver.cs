using Vop.Links.Rings;

namespace Vop.Links.Transport;

/// <summary>Driver side: hands out cache-line-aligned pieces of the buffer region (which the driver owns).</summary>
public sealed class BufferCarver
{
    private const ulong Line = 64;
    private readonly BufferRegion _region;
    private ulong _next;

    public BufferCarver(BufferRegion region)
    {
        _region = region;
        _next = region.Offset;
    }

    public ulong Remaining => _region.End - _next;

    /// <summary>Reserves <paramref name="count"/> buffers of <paramref name="bufferSize"/> bytes; returns the first offset.</summary>
    public ulong Carve(int count, uint bufferSize)
    {
        ulong stride = Stride(bufferSize);
        ulong bytes = stride * (ulong)count;
        if (bytes > Remaining)
        {
            throw new InvalidOperationException($"buffer region exhausted: {count} buffers of {bufferSize} bytes need {bytes}, {Remaining} left");
        }

        ulong first = _next;
        _next += bytes;
        return first;
    }

    public static ulong Stride(uint bufferSize) => (bufferSize + Line - 1) & ~(Line - 1);
}
