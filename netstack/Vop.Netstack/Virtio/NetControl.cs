using System.Buffers.Binary;
using Vop.Links.Rings;
using Vop.Links.Windows;

namespace Vop.Netstack.Virtio;

/// <summary>
/// The virtio-net control queue (virtio 1.2 5.1.6.5): a chain of driver-readable `u8 class, u8 command,
/// data…` then one device-writable `u8 ack`. vop serves one command, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET
/// (class 4, command 0, data `le16 virtqueue_pairs`); anything else is answered VIRTIO_NET_ERR.
/// </summary>
public static class NetControl
{
    public const byte ClassMq = 4;
    public const byte CommandVqPairsSet = 0;
    public const byte Ok = 0;
    public const byte Err = 1;

    /// <summary>Bytes of a VQ_PAIRS_SET command: class, command, le16 pairs.</summary>
    public const int PairsSetSize = 4;

    /// <summary>Writes a VQ_PAIRS_SET command for <paramref name="pairs"/> into <paramref name="into"/>.</summary>
    public static void EncodePairsSet(Span<byte> into, ushort pairs)
    {
        into[0] = ClassMq;
        into[1] = CommandVqPairsSet;
        BinaryPrimitives.WriteUInt16LittleEndian(into[2..], pairs);
    }

    /// <summary>
    /// Decides one command the device popped: the ack to write, and the pairs to use from now on (0 when
    /// the command changes nothing). A pair count outside 1..<paramref name="maxPairs"/>, a short command,
    /// an unknown class or command: ERR, nothing changes (5.1.6.5.5: the device MUST NOT change on ERR).
    /// </summary>
    public static byte Decide(in WindowAccessor w, ReadOnlySpan<BufferSegment> segs, ulong readable, int maxPairs, out int pairs)
    {
        pairs = 0;
        Span<byte> command = stackalloc byte[PairsSetSize];
        if (readable < PairsSetSize || !ChainBytes.Gather(w, segs, command) ||
            command[0] != ClassMq || command[1] != CommandVqPairsSet)
        {
            return Err;
        }

        int wanted = BinaryPrimitives.ReadUInt16LittleEndian(command[2..]);
        if (wanted < 1 || wanted > maxPairs)
        {
            return Err;
        }

        pairs = wanted;
        return Ok;
    }

    /// <summary>Where the ack byte goes: the first byte of the first device-writable segment, or -1 when there is none.</summary>
    public static int AckSegment(ReadOnlySpan<BufferSegment> segs)
    {
        for (int i = 0; i < segs.Length; i++)
        {
            if (segs[i].DeviceWritable && segs[i].Length > 0)
            {
                return i;
            }
        }

        return -1;
    }
}
