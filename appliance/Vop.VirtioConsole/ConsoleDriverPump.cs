using System.Buffers.Binary;
using System.Text;
using Vop.Links.Devices;
using Vop.Links.Doorbells;
using Vop.Links.Rings;
using Vop.Links.Windows;
using Vop.Links.Stats;

namespace Vop.VirtioConsole;

/// <summary>
/// Driver side of virtio-console with MULTIPORT: posts receive buffers, says DEVICE_READY, answers PORT_ADD
/// with PORT_READY, binds each named port to its endpoint, and carries bytes and PORT_OPEN both ways.
/// Everything the device sends on the control queue is validated; a violation quarantines the device.
/// </summary>
internal sealed class ConsoleDriverPump : ConsolePumpBase
{
    private readonly DriverSession _session;
    private readonly PortSet _endpoints;
    private readonly IReadOnlyList<DriverQueue> _q;
    private readonly ulong[] _base;
    private readonly uint[] _size;
    private readonly ushort[][] _bufferOfHead;
    private readonly uint[][] _sentLength; // per queue and buffer: bytes posted by Send, counted when the device returns it
    private readonly Stack<ushort>[] _free;

    public ConsoleDriverPump(string name, DriverSession session, EventFdDoorbell work, PortSet endpoints, int ports)
        : base(name, session.End, session.Slot.Vectors, work, ports)
    {
        _session = session;
        _endpoints = endpoints;
        _q = session.Queues;
        _base = new ulong[_q.Count];
        _size = new uint[_q.Count];
        _bufferOfHead = new ushort[_q.Count][];
        _sentLength = new uint[_q.Count][];
        _free = new Stack<ushort>[_q.Count];
        for (int i = 0; i < _q.Count; i++)
        {
            bool control = i is ConsoleProtocol.ControlReceiveQueue or ConsoleProtocol.ControlTransmitQueue;
            _size[i] = control ? (uint)ConsoleProtocol.ControlBufferSize : (uint)ConsoleProtocol.PortBufferSize;
            _base[i] = session.Buffers.Carve(_q[i].Size, _size[i]);
            _bufferOfHead[i] = new ushort[_q[i].Size];
            _sentLength[i] = new uint[_q[i].Size];
            _free[i] = new Stack<ushort>(Enumerable.Range(0, _q[i].Size).Reverse().Select(b => (ushort)b));
        }
    }

    private static bool DeviceToDriver(int queue) => queue == ConsoleProtocol.ControlReceiveQueue || (queue != ConsoleProtocol.ControlTransmitQueue && queue % 2 == 0);

    private ulong Buffer(int queue, ushort b) => _base[queue] + ((ulong)b * Links.Transport.BufferCarver.Stride(_size[queue]));

    protected override void Begin()
    {
        for (int i = 0; i < _q.Count; i++)
        {
            if (DeviceToDriver(i))
            {
                while (_free[i].Count > 0)
                {
                    Post(i, _free[i].Pop());
                }

                _q[i].Publish();
            }
        }

        ControlOut.Enqueue(ConsoleProtocol.Encode(0, ConsoleProtocol.DeviceReady, 1));
    }

    private void Post(int queue, ushort b)
    {
        _q[queue].TryAdd(new BufferSegment(Buffer(queue, b), _size[queue], true), out ushort head);
        _bufferOfHead[queue][head] = b;
    }

    private bool Send(int queue, ReadOnlySpan<byte> data)
    {
        if (_free[queue].Count == 0)
        {
            return false;
        }

        ushort b = _free[queue].Pop();
        data.CopyTo(_session.End.Window.Accessor.Bytes(Buffer(queue, b), data.Length));
        _q[queue].TryAdd(new BufferSegment(Buffer(queue, b), (uint)data.Length, false), out ushort head);
        _bufferOfHead[queue][head] = b;
        _sentLength[queue][b] = (uint)data.Length;
        return true;
    }

    /// <summary>
    /// Takes back the buffers the device is done with and counts them (packets, and the bytes we had put in
    /// them) as the device counts what it consumed, so both ends agree on what crossed.
    /// </summary>
    private void ReapSent(int queue)
    {
        ulong consumed = 0;
        while (_q[queue].TryReap(out UsedElement u))
        {
            ushort b = _bufferOfHead[queue][u.Head];
            consumed += _sentLength[queue][b];
            _free[queue].Push(b);
        }

        _q[queue].FlushReapStats(consumed);
    }

    protected override QueueStats StatsOf(int queue) => _q[queue].Stats;

    protected override bool Pass()
    {
        WindowAccessor w = _session.End.Window.Accessor;
        bool moved = false;
        Span<byte> chunk = stackalloc byte[ChunkBytes];

        // Control from the device.
        const int cin = ConsoleProtocol.ControlReceiveQueue;
        while (_q[cin].TryReap(out UsedElement u))
        {
            moved = true;
            ushort b = _bufferOfHead[cin][u.Head];
            if (u.LengthValid)
            {
                Handle(w.Bytes(Buffer(cin, b), (int)u.Length).ToArray());
            }
            else
            {
                Violation("control message longer than its buffer");
            }

            Post(cin, b);
        }

        _q[cin].FlushReapStats();
        _q[cin].Publish();

        foreach (ConsolePort p in Ports)
        {
            if (p.Endpoint is not { } e)
            {
                continue;
            }

            int rxq = ConsoleProtocol.ReceiveQueue(p.Id);
            int txq = rxq + 1;
            QueueOpenState(p, e);

            if (e.RequestedSize != p.SentSize && e.RequestedSize.Cols != 0)
            {
                p.SentSize = e.RequestedSize;
                ControlOut.Enqueue(ConsoleProtocol.EncodeSize((uint)p.Id, ConsoleProtocol.VopResize, p.SentSize.Cols, p.SentSize.Rows));
            }

            // Device → endpoint.
            bool drained = false;
            while (true)
            {
                if (e.InboundSpace < ChunkBytes)
                {
                    break;
                }

                if (!_q[rxq].TryReap(out UsedElement u))
                {
                    drained = true;
                    break;
                }

                moved = true;
                ushort b = _bufferOfHead[rxq][u.Head];
                if (u.LengthValid && u.Length > 0)
                {
                    e.Deliver(w.Bytes(Buffer(rxq, b), (int)u.Length));
                }

                Post(rxq, b);
            }

            _q[rxq].FlushReapStats();
            _q[rxq].Publish();
            SettleClose(p, drained);

            // Endpoint → device.
            ReapSent(txq);
            while (p.PeerOpen && e.Outbound.Count > 0 && _free[txq].Count > 0)
            {
                int n = e.Outbound.Read(chunk);
                Send(txq, chunk[..n]);
                moved = true;
            }

            _q[txq].Publish();
        }

        // Control to the device.
        const int cout = ConsoleProtocol.ControlTransmitQueue;
        ReapSent(cout);
        while (ControlOut.Count > 0 && Send(cout, ControlOut.Peek()))
        {
            ControlOut.Dequeue();
            moved = true;
        }

        _q[cout].Publish();
        foreach (DriverQueue q in _q)
        {
            RingFault(q.Fault);
        }

        return moved;
    }

    private void Handle(byte[] raw)
    {
        if (ConsoleProtocol.TryParse(raw, out ConsoleProtocol.Message m) is string why)
        {
            Violation(why);
            return;
        }

        if (m.Id >= (uint)Ports.Length)
        {
            Violation($"control event {m.Event} names port {m.Id}, beyond max_nr_ports {Ports.Length}");
            return;
        }

        ConsolePort port = Ports[m.Id];
        switch (m.Event)
        {
            case ConsoleProtocol.PortAdd:
                port.Added = true;
                ControlOut.Enqueue(ConsoleProtocol.Encode(m.Id, ConsoleProtocol.PortReady, 1));
                break;
            case ConsoleProtocol.PortName when port.Added:
                string name;
                try
                {
                    name = new UTF8Encoding(false, true).GetString(m.Payload);
                }
                catch (DecoderFallbackException)
                {
                    Violation($"port {m.Id} name is not UTF-8");
                    return;
                }

                if (name.Length == 0 || name.Any(char.IsControl) || name.Contains('/'))
                {
                    Violation($"port {m.Id} name is empty or has control characters or '/'");
                    return;
                }

                port.Name = name;
                port.Endpoint = _endpoints.Get(name);
                port.Ready = true;
                port.SentOpen = null;
                port.SentRefusals = port.Endpoint.Refusals; // refusals of earlier sessions are history
                if (port.PeerOpen)
                {
                    port.Endpoint.PeerOpenChanged(true);
                }

                break;
            case ConsoleProtocol.ConsolePort when port.Added:
                port.IsConsole = true;
                break;
            case ConsoleProtocol.PortOpen when port.Added && m.Value <= 1:
                PeerOpen(port, m.Value == 1);
                break;
            case ConsoleProtocol.Resize when port.Added && m.Payload.Length == 4:
                port.Endpoint?.Resize(BinaryPrimitives.ReadUInt16LittleEndian(m.Payload), BinaryPrimitives.ReadUInt16LittleEndian(m.Payload.AsSpan(2)));
                break;
            case ConsoleProtocol.PortRemove when port.Added:
                if (port.PeerOpen)
                {
                    port.Endpoint?.PeerOpenChanged(false);
                }

                Ports[m.Id] = new ConsolePort((int)m.Id);
                break;
            default:
                Violation($"control event {m.Event} (value {m.Value}) for port {m.Id} is not valid from the device");
                break;
        }
    }

    protected override int InboundParity => 0;

    protected override bool ArmQueue(int queue) => _q[queue].EnableInterrupts();
}
