using System.Buffers.Binary;
using Vop.Netstack.Capture;

namespace Vop.Netstack.Tests.Infrastructure;

/// <summary>One record drained from a <see cref="CaptureRing"/>: le32 length, u8 direction, u8 device, le64 ns, bytes.</summary>
internal sealed record CaptureRecord(byte Direction, byte DeviceIndex, long UnixNanoseconds, byte[] Bytes)
{
    public static List<CaptureRecord> DrainAll(CaptureRing ring)
    {
        var into = new byte[1 << 20];
        int n = ring.Drain(into);
        var records = new List<CaptureRecord>();
        int at = 0;
        while (at < n)
        {
            int length = BinaryPrimitives.ReadInt32LittleEndian(into.AsSpan(at));
            records.Add(new CaptureRecord(
                into[at + 4],
                into[at + 5],
                BinaryPrimitives.ReadInt64LittleEndian(into.AsSpan(at + 6)),
                into.AsSpan(at + CaptureRing.RecordHeader, length).ToArray()));
            at += CaptureRing.RecordHeader + length;
        }

        Assert.Equal(n, at);
        return records;
    }
}
