using System.Buffers.Binary;

namespace Vop.TestSupport.RingTest;

/// <summary>Which way ring-test buffers flow.</summary>
[Flags]
public enum RingTestDirections : uint
{
    ToDevice = 1,
    ToDriver = 2,
    Both = ToDevice | ToDriver,
}

/// <summary>
/// Config space of the ring-test device (type 0xFFFE): u32 payload bytes, u32 directions, u64 buffer
/// count per direction. The device side decides; the driver side reads it, so both agree.
/// </summary>
public readonly record struct RingTestConfig(uint Payload, RingTestDirections Directions, ulong Count)
{
    public const int Size = 16;

    public byte[] Encode()
    {
        var b = new byte[Size];
        BinaryPrimitives.WriteUInt32LittleEndian(b, Payload);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), (uint)Directions);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), Count);
        return b;
    }

    public static RingTestConfig Decode(ReadOnlySpan<byte> b) => b.Length < Size
        ? throw new ArgumentException("ring-test config space is too short")
        : new RingTestConfig(
            BinaryPrimitives.ReadUInt32LittleEndian(b),
            (RingTestDirections)BinaryPrimitives.ReadUInt32LittleEndian(b[4..]),
            BinaryPrimitives.ReadUInt64LittleEndian(b[8..]));
}

/// <summary>What one direction of a ring-test run did.</summary>
public sealed record RingTestResult(string Direction, ulong Buffers, ulong Bytes, TimeSpan Elapsed, string? Error)
{
    public double MegaBuffersPerSecond => Elapsed.TotalSeconds > 0 ? Buffers / Elapsed.TotalSeconds / 1e6 : 0;
}
