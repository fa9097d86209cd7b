using Tmds.Linux;
using Vop.Links.Rings;
using Vop.Links.Windows;

namespace Vop.Netstack.Virtio;

/// <summary>Small helpers over a chain's segments: gather the header, patch bytes, build iovecs into the window.</summary>
internal static unsafe class ChainBytes
{
    /// <summary>Copies the first <paramref name="into"/>.Length bytes of the chain (the header may be split across descriptors).</summary>
    public static bool Gather(in WindowAccessor w, ReadOnlySpan<BufferSegment> segs, Span<byte> into)
    {
        int got = 0;
        foreach (BufferSegment s in segs)
        {
            if (got == into.Length)
            {
                break;
            }

            int take = (int)Math.Min(s.Length, (uint)(into.Length - got));
            w.Bytes(s.Offset, take).CopyTo(into[got..]);
            got += take;
        }

        return got == into.Length;
    }

    /// <summary>Writes <paramref name="value"/> as little-endian u16 at chain byte offset <paramref name="at"/>.</summary>
    public static void WriteU16(in WindowAccessor w, ReadOnlySpan<BufferSegment> segs, int at, ushort value)
    {
        Span<byte> b = [(byte)value, (byte)(value >> 8)];
        int pos = 0;
        int k = 0;
        foreach (BufferSegment s in segs)
        {
            while (k < 2 && at + k >= pos && at + k < pos + (int)s.Length)
            {
                w.Bytes(s.Offset + (ulong)(at + k - pos), 1)[0] = b[k];
                k++;
            }

            pos += (int)s.Length;
            if (k == 2)
            {
                return;
            }
        }
    }

    /// <summary>Fills iovecs pointing into the window for the segments (checked addresses); returns the count.</summary>
    public static int ToIovec(in WindowAccessor w, ReadOnlySpan<BufferSegment> segs, iovec* iov)
    {
        for (int i = 0; i < segs.Length; i++)
        {
            iov[i].iov_base = w.Address(segs[i].Offset, segs[i].Length);
            iov[i].iov_len = (size_t)segs[i].Length;
        }

        return segs.Length;
    }
}
