using Tmds.Linux;

namespace Vop.Netstack.Tun;

/// <summary>
/// Byte offsets over a scatter list whose entries the pump built from checked window addresses
/// (<see cref="Virtio.ChainBytes.ToIovec"/>): copy a few bytes out or in, and lists that skip a range.
/// Nothing here reaches past an entry's length.
/// </summary>
internal static unsafe class Iovecs
{
    public static ulong Length(iovec* iov, int count)
    {
        ulong total = 0;
        for (int i = 0; i < count; i++)
        {
            total += (ulong)iov[i].iov_len;
        }

        return total;
    }

    /// <summary>Copies bytes from <paramref name="offset"/> into <paramref name="into"/>; returns how many there were.</summary>
    public static int CopyOut(iovec* iov, int count, int offset, Span<byte> into)
    {
        int got = 0;
        ulong pos = 0;
        for (int i = 0; i < count && got < into.Length; i++)
        {
            ulong len = (ulong)iov[i].iov_len;
            ulong at = (ulong)offset + (ulong)got;
            if (at < pos + len)
            {
                int take = (int)Math.Min(pos + len - at, (ulong)(into.Length - got));
                new ReadOnlySpan<byte>((byte*)iov[i].iov_base + (at - pos), take).CopyTo(into[got..]);
                got += take;
            }

            pos += len;
        }

        return got;
    }

    /// <summary>Copies <paramref name="from"/> to <paramref name="offset"/>, as much as the list holds; returns how much.</summary>
    public static int CopyIn(iovec* iov, int count, int offset, ReadOnlySpan<byte> from)
    {
        int put = 0;
        ulong pos = 0;
        for (int i = 0; i < count && put < from.Length; i++)
        {
            ulong len = (ulong)iov[i].iov_len;
            ulong at = (ulong)offset + (ulong)put;
            if (at < pos + len)
            {
                int take = (int)Math.Min(pos + len - at, (ulong)(from.Length - put));
                from.Slice(put, take).CopyTo(new Span<byte>((byte*)iov[i].iov_base + (at - pos), take));
                put += take;
            }

            pos += len;
        }

        return put;
    }

    /// <summary>
    /// The list without bytes [<paramref name="at"/>, <paramref name="at"/> + <paramref name="length"/>)
    /// into <paramref name="into"/> (room for count + 1 entries); returns its entry count.
    /// </summary>
    public static int WithHole(iovec* iov, int count, ulong at, ulong length, iovec* into)
    {
        int n = 0;
        ulong pos = 0;
        ulong end = at + length;
        for (int i = 0; i < count; i++)
        {
            byte* b = (byte*)iov[i].iov_base;
            ulong len = (ulong)iov[i].iov_len;
            if (pos < at)
            {
                ulong take = Math.Min(len, at - pos);
                into[n++] = new iovec { iov_base = b, iov_len = (size_t)take };
            }

            if (pos + len > end)
            {
                ulong skip = end > pos ? end - pos : 0;
                into[n++] = new iovec { iov_base = b + skip, iov_len = (size_t)(len - skip) };
            }

            pos += len;
        }

        return n;
    }
}
