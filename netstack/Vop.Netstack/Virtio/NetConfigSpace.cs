using System.Buffers.Binary;

namespace Vop.Netstack.Virtio;

/// <summary>virtio-net config space: mac[6], le16 status, le16 max_virtqueue_pairs, le16 mtu (virtio 1.2 5.1.4).</summary>
public readonly record struct NetConfigSpace(byte[] Mac, bool LinkUp, ushort Mtu, ushort MaxQueuePairs = 1)
{
    public const int Size = 12;
    public const ushort StatusLinkUp = 1;

    public byte[] Encode()
    {
        var b = new byte[Size];
        Mac.AsSpan(0, 6).CopyTo(b);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(6), LinkUp ? StatusLinkUp : (ushort)0);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(8), MaxQueuePairs);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(10), Mtu);
        return b;
    }

    public static NetConfigSpace Decode(ReadOnlySpan<byte> b)
    {
        if (b.Length < Size)
        {
            throw new InvalidDataException($"virtio-net config space is {b.Length} bytes, expected {Size}");
        }

        return new NetConfigSpace(b[..6].ToArray(), (BinaryPrimitives.ReadUInt16LittleEndian(b[6..]) & StatusLinkUp) != 0, BinaryPrimitives.ReadUInt16LittleEndian(b[10..]), BinaryPrimitives.ReadUInt16LittleEndian(b[8..]));
    }
}
