using System.Numerics;
using Vop.Links.Rings;
using Vop.Links.Windows;

namespace Vop.Links.Tests.Infrastructure;

/// <summary>
/// An independent, deliberately plain model of what each role must conclude from a ring state: big-integer
/// range checks, the rule order of docs/wire-format.md "Validation", no shared code with the queues.
/// </summary>
public static class RingOracle
{
    public sealed record Chain(ushort Head, List<BufferSegment> Segments);

    /// <summary>What the device side must pop from a ring state that starts at <paramref name="lastAvail"/>.</summary>
    public static (List<Chain> Chains, RingErrorKind Fault) DevicePops(in WindowAccessor w, SplitRingLayout l, BufferRegion region, ushort lastAvail)
    {
        var chains = new List<Chain>();
        int n = l.Size;
        int delta = (ushort)(w.ReadU16(l.AvailIdx) - lastAvail);
        if (delta > n)
        {
            return (chains, RingErrorKind.AvailJump);
        }

        for (int k = 0; k < delta; k++)
        {
            int head = w.ReadU16(l.AvailRing + (2UL * (ulong)((lastAvail + k) % n)));
            if (head >= n)
            {
                return (chains, RingErrorKind.BadHead);
            }

            var segs = new List<BufferSegment>();
            int index = head;
            bool seenWritable = false;
            while (true)
            {
                if (segs.Count >= n)
                {
                    return (chains, RingErrorKind.Loop);
                }

                // The spec's byte offsets of struct virtq_desc, on purpose not VirtqDesc: the oracle stays an
                // independent reading of the wire format (the fuzz writes entries through VirtqDesc).
                ulong d = l.DescOffset + (16UL * (ulong)index);
                ulong addr = w.ReadU64(d);
                uint len = w.ReadU32(d + 8);
                ushort flags = w.ReadU16(d + 12);
                ushort next = w.ReadU16(d + 14);
                if ((flags & 4) != 0)
                {
                    return (chains, RingErrorKind.Indirect);
                }

                var end = new BigInteger(addr) + len;
                if (addr < region.Offset || end > new BigInteger(region.Offset) + region.Length)
                {
                    return (chains, RingErrorKind.OutOfWindow);
                }

                bool writable = (flags & 2) != 0;
                if (!writable && seenWritable)
                {
                    return (chains, RingErrorKind.DescOrder);
                }

                seenWritable |= writable;
                segs.Add(new BufferSegment(addr, len, writable));
                if ((flags & 1) == 0)
                {
                    break;
                }

                if (next >= n)
                {
                    return (chains, RingErrorKind.BadNext);
                }

                index = next;
            }

            chains.Add(new Chain((ushort)head, segs));
        }

        return (chains, RingErrorKind.None);
    }
}
