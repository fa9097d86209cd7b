namespace Vop.VirtioConsole;

/// <summary>
/// A bounded byte FIFO between an endpoint's thread and the console pump. Writers block (with a timeout
/// and cancellation) while it is full, so a slow peer pushes back on a TCP stream instead of losing bytes;
/// <see cref="Drop"/> mode instead discards the oldest bytes (scrollback).
/// </summary>
public sealed class ByteQueue
{
    private readonly byte[] _buffer;
    private readonly object _gate = new();
    private int _head;
    private int _count;
    private bool _closed;

    public ByteQueue(int capacity)
    {
        _buffer = new byte[capacity];
    }

    public int Capacity => _buffer.Length;

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _count;
            }
        }
    }

    public int Space => Capacity - Count;

    /// <summary>Raised (outside the lock) after bytes were added.</summary>
    public Action? DataAdded { get; set; }

    /// <summary>Raised (outside the lock) after bytes were taken, so a producer waiting for space can go on.</summary>
    public Action? SpaceFreed { get; set; }

    /// <summary>Adds all of <paramref name="data"/>, waiting for space; false if closed or cancelled.</summary>
    public bool Write(ReadOnlySpan<byte> data, CancellationToken cancel = default)
    {
        while (!data.IsEmpty)
        {
            int n;
            lock (_gate)
            {
                while (_count == _buffer.Length && !_closed && !cancel.IsCancellationRequested)
                {
                    Monitor.Wait(_gate, 100);
                }

                if (_closed || cancel.IsCancellationRequested)
                {
                    return false;
                }

                n = Math.Min(data.Length, _buffer.Length - _count);
                Put(data[..n]);
            }

            data = data[n..];
            DataAdded?.Invoke();
        }

        return true;
    }

    /// <summary>Adds <paramref name="data"/>, discarding the oldest bytes when full; never blocks.</summary>
    public void Drop(ReadOnlySpan<byte> data)
    {
        if (data.Length > _buffer.Length)
        {
            data = data[^_buffer.Length..];
        }

        lock (_gate)
        {
            int over = _count + data.Length - _buffer.Length;
            if (over > 0)
            {
                _head = (_head + over) % _buffer.Length;
                _count -= over;
            }

            Put(data);
        }

        DataAdded?.Invoke();
    }

    private void Put(ReadOnlySpan<byte> data)
    {
        int tail = (_head + _count) % _buffer.Length;
        int first = Math.Min(data.Length, _buffer.Length - tail);
        data[..first].CopyTo(_buffer.AsSpan(tail));
        data[first..].CopyTo(_buffer);
        _count += data.Length;
        Monitor.PulseAll(_gate);
    }

    /// <summary>Takes up to <paramref name="into"/>.Length bytes without waiting; returns how many.</summary>
    public int Read(Span<byte> into)
    {
        int n;
        lock (_gate)
        {
            n = Math.Min(into.Length, _count);
            int first = Math.Min(n, _buffer.Length - _head);
            _buffer.AsSpan(_head, first).CopyTo(into);
            _buffer.AsSpan(0, n - first).CopyTo(into[first..]);
            _head = (_head + n) % _buffer.Length;
            _count -= n;
            Monitor.PulseAll(_gate);
        }

        if (n > 0)
        {
            SpaceFreed?.Invoke();
        }

        return n;
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> for data; returns bytes read (0 on timeout or close).</summary>
    public int ReadWait(Span<byte> into, int timeoutMs)
    {
        lock (_gate)
        {
            if (_count == 0 && !_closed)
            {
                Monitor.Wait(_gate, timeoutMs);
            }
        }

        return Read(into);
    }

    /// <summary>A copy of everything queued, oldest first (scrollback for a late attacher).</summary>
    public byte[] Snapshot()
    {
        lock (_gate)
        {
            var copy = new byte[_count];
            int first = Math.Min(_count, _buffer.Length - _head);
            _buffer.AsSpan(_head, first).CopyTo(copy);
            _buffer.AsSpan(0, _count - first).CopyTo(copy.AsSpan(first));
            return copy;
        }
    }

    public void Clear()
    {
        lock (_gate)
        {
            _head = _count = 0;
            Monitor.PulseAll(_gate);
        }
    }

    public void Close()
    {
        lock (_gate)
        {
            _closed = true;
            Monitor.PulseAll(_gate);
        }
    }

    public bool IsClosed
    {
        get
        {
            lock (_gate)
            {
                return _closed;
            }
        }
    }
}
