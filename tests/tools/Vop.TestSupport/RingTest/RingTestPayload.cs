using System.Buffers.Binary;

namespace Vop.TestSupport.RingTest;

/// <summary>
/// Content of ring-test buffers: an 8-byte little-endian sequence number, then bytes derived from it, so
/// a receiver detects loss, duplication, reordering and corruption from the buffer alone.
/// </summary>
public static class RingTestPayload
{
    public static void Write(Span<byte> buffer, ulong seq)
    {
        if (buffer.Length >= 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(buffer, seq);
            byte b = (byte)(seq * 31);
            for (int i = 8; i < buffer.Length; i++)
            {
                buffer[i] = (byte)(b + i);
            }
        }
        else
        {
            buffer.Fill((byte)seq);
        }
    }

    public static bool Verify(ReadOnlySpan<byte> buffer, ulong seq)
    {
        if (buffer.Length < 8)
        {
            foreach (byte x in buffer)
            {
                if (x != (byte)seq)
                {
                    return false;
                }
            }

            return true;
        }

        if (BinaryPrimitives.ReadUInt64LittleEndian(buffer) != seq)
        {
            return false;
        }

        byte b = (byte)(seq * 31);
        for (int i = 8; i < buffer.Length; i++)
        {
            if (buffer[i] != (byte)(b + i))
            {
                return false;
            }
        }

        return true;
    }
}
