using System.Buffers.Binary;
using Vop.Links.Rings;
using Vop.Links.Windows;

namespace Vop.Netstack.Capture;

/// <summary>
/// Frames mirrored for `vop capture`: the pump copies a frame (virtio-net header included) into this
/// bounded ring only while a capture is attached; a drain thread takes them off the hot path. When the
/// ring is full the frame is counted in <see cref="Drops"/>, never waited for.
/// Record: le32 length, u8 direction (0 device to driver, 1 driver to device), u8 device index, le64 unix
/// time in nanoseconds, then the bytes.
/// </summary>
public sealed class CaptureRing
{
    public const int RecordHeader = 14;

    private readonly byte[] _buffer;
    private readonly object _gate = new();
    private int _head;
    private int _count;
    private volatile bool _active;

    public CaptureRing(int capacity = 8 << 20)
    {
        _buffer = new byte[capacity];
    }

    public bool Active => _active;

    /// <summary>Index of the device within its link, written into each record.</summary>
    public byte DeviceIndex { get; set; }

    public long Drops { get; private set; }

    public void Start()
    {
        lock (_gate)
        {
            _head = _count = 0;
            Drops = 0;
        }

        _active = true;
    }

    public void Stop() => _active = false;

    /// <summary>Copies <paramref name="length"/> bytes of a chain out of the window (pump thread, only while active).</summary>
    public void Offer(in WindowAccessor w, ReadOnlySpan<BufferSegment> segments, int length, byte direction)
    {
        int need = RecordHeader + length;
        lock (_gate)
        {
            if (need > _buffer.Length - _count)
            {
                Drops++;
                return;
            }

            Span<byte> header = stackalloc byte[RecordHeader];
            BinaryPrimitives.WriteInt32LittleEndian(header, length);
            header[4] = direction;
            header[5] = DeviceIndex;
            BinaryPrimitives.WriteInt64LittleEndian(header[6..], (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100);
            Put(header);
            int left = length;
            foreach (BufferSegment s in segments)
            {
                if (left == 0)
                {
                    break;
                }

                int take = (int)Math.Min(s.Length, (uint)left);
                Put(w.Bytes(s.Offset, take));
                left -= take;
            }

            if (left > 0)
            {
                Put(new byte[left]); // chain shorter than claimed: pad (never happens with validated lengths)
            }
        }
    }

    private void Put(ReadOnlySpan<byte> data)
    {
        int tail = (_head + _count) % _buffer.Length;
        int first = Math.Min(data.Length, _buffer.Length - tail);
        data[..first].CopyTo(_buffer.AsSpan(tail));
        data[first..].CopyTo(_buffer);
        _count += data.Length;
    }

    /// <summary>Takes up to <paramref name="into"/>.Length bytes of whole records; returns how many bytes.</summary>
    public int Drain(Span<byte> into)
    {
        lock (_gate)
        {
            int taken = 0;
            Span<byte> lenBytes = stackalloc byte[4];
            while (_count >= RecordHeader)
            {
                for (int i = 0; i < 4; i++)
                {
                    lenBytes[i] = _buffer[(_head + i) % _buffer.Length];
                }

                int record = RecordHeader + BinaryPrimitives.ReadInt32LittleEndian(lenBytes);
                if (record > into.Length - taken)
                {
                    break;
                }

                int first = Math.Min(record, _buffer.Length - _head);
                _buffer.AsSpan(_head, first).CopyTo(into[taken..]);
                _buffer.AsSpan(0, record - first).CopyTo(into[(taken + first)..]);
                _head = (_head + record) % _buffer.Length;
                _count -= record;
                taken += record;
            }

            return taken;
        }
    }
}
