using System.Buffers.Binary;
using Vop.Links.Devices;
using Vop.Links.Doorbells;
using Vop.Links.Rings;
using Vop.Links.Windows;
using Vop.Links.Stats;

namespace Vop.VirtioConsole;

/// <summary>
/// Device side of virtio-console with MULTIPORT: waits for DEVICE_READY, adds every port, names them, marks
/// the console port, and from then on carries each port's bytes and PORT_OPEN/RESIZE both ways. Everything
/// the driver sends on the control queue is validated; a violation quarantines the device.
/// </summary>
internal sealed class ConsoleDevicePump : ConsolePumpBase
{
    private readonly DeviceSession _session;
    private readonly IReadOnlyList<DeviceQueue> _q;
    private bool _deviceReady;

    public ConsoleDevicePump(string name, DeviceSession session, EventFdDoorbell work, IReadOnlyList<(string Name, PortEndpoint Endpoint)> ports)
        : base(name, session.End, session.Slot.Vectors, work, ports.Count)
    {
        _session = session;
        _q = session.Queues;
        for (int i = 0; i < ports.Count; i++)
        {
            Ports[i].Name = ports[i].Name;
            Ports[i].Endpoint = ports[i].Endpoint;
            Ports[i].IsConsole = i == 0;
        }
    }

    private DeviceQueue Rx(int port) => _q[ConsoleProtocol.ReceiveQueue(port)];

    private DeviceQueue Tx(int port) => _q[ConsoleProtocol.ReceiveQueue(port) + 1];

    protected override QueueStats StatsOf(int queue) => _q[queue].Stats;

    protected override bool Pass()
    {
        WindowAccessor w = _session.End.Window.Accessor;
        Span<BufferSegment> segs = stackalloc BufferSegment[16];
        bool moved = false;

        // Control from the driver.
        DeviceQueue cout = _q[ConsoleProtocol.ControlTransmitQueue];
        while (cout.TryPop(segs, out DescriptorChain c))
        {
            moved = true;
            if (c.Truncated || c.WritableLength != 0 || c.ReadableLength > ConsoleProtocol.HeaderSize + ConsoleProtocol.MaxNameBytes)
            {
                Violation($"control buffer of {c.ReadableLength} bytes is oversize or malformed");
                cout.CountConsumed(c.ReadableLength);
                cout.PushUsed(c.Head, 0);
                break;
            }

            Handle(Gather(w, segs[..c.SegmentCount], c.ReadableLength));
            cout.CountConsumed(c.ReadableLength);
            cout.PushUsed(c.Head, 0);
        }

        cout.Publish();

        foreach (ConsolePort p in Ports)
        {
            if (!p.Ready || p.Endpoint is not { } e)
            {
                continue;
            }

            // State toward the driver: open (close only once our bytes are out) and window size.
            QueueOpenState(p, e);

            if (e.RequestedSize != p.SentSize && e.RequestedSize.Cols != 0)
            {
                p.SentSize = e.RequestedSize;
                ControlOut.Enqueue(ConsoleProtocol.EncodeSize((uint)p.Id, ConsoleProtocol.Resize, p.SentSize.Cols, p.SentSize.Rows));
            }

            // Driver → endpoint.
            DeviceQueue tx = Tx(p.Id);
            bool drained = false;
            while (true)
            {
                if (e.InboundSpace < ChunkBytes)
                {
                    break;
                }

                if (!tx.TryPop(segs, out DescriptorChain c))
                {
                    drained = true;
                    break;
                }

                moved = true;
                if (!c.Truncated && c.WritableLength == 0 && c.ReadableLength <= ChunkBytes * 16)
                {
                    e.Deliver(Gather(w, segs[..c.SegmentCount], c.ReadableLength));
                }
                else
                {
                    tx.Stats.Drops[(int)ConsoleDropReason.Oversize]++;
                }

                // What the driver put in crossed, delivered or dropped (as the net device counts): the driver counts the same.
                tx.CountConsumed(c.ReadableLength);
                tx.PushUsed(c.Head, 0);
            }

            tx.Publish();
            SettleClose(p, drained);

            // Endpoint → driver, once the driver's end is open.
            DeviceQueue rx = Rx(p.Id);
            while (p.PeerOpen && e.Outbound.Count > 0 && rx.TryPop(segs, out DescriptorChain c))
            {
                moved = true;
                if (c.Truncated || c.ReadableLength != 0 || segs[0].Length == 0)
                {
                    rx.PushUsed(c.Head, 0);
                    continue;
                }

                int n = e.Outbound.Read(w.Bytes(segs[0].Offset, (int)Math.Min(segs[0].Length, (uint)ChunkBytes * 16)));
                rx.PushUsed(c.Head, (uint)n);
            }

            rx.Publish();
        }

        // Control to the driver.
        DeviceQueue cin = _q[ConsoleProtocol.ControlReceiveQueue];
        while (ControlOut.Count > 0 && cin.TryPop(segs, out DescriptorChain c))
        {
            moved = true;
            byte[] msg = ControlOut.Peek();
            if (c.Truncated || c.ReadableLength != 0 || segs[0].Length < msg.Length)
            {
                cin.PushUsed(c.Head, 0);
                continue;
            }

            ControlOut.Dequeue();
            msg.CopyTo(w.Bytes(segs[0].Offset, msg.Length));
            cin.PushUsed(c.Head, (uint)msg.Length);
        }

        cin.Publish();
        foreach (DeviceQueue q in _q)
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

        if (m.Event == ConsoleProtocol.DeviceReady)
        {
            if (m.Value == 1 && !_deviceReady)
            {
                _deviceReady = true;
                foreach (ConsolePort p in Ports)
                {
                    p.Added = true;
                    ControlOut.Enqueue(ConsoleProtocol.Encode((uint)p.Id, ConsoleProtocol.PortAdd, 0));
                }
            }

            return;
        }

        if (m.Id >= (uint)Ports.Length || !Ports[m.Id].Added)
        {
            Violation($"control event {m.Event} names unknown port {m.Id}");
            return;
        }

        ConsolePort port = Ports[m.Id];
        switch (m.Event)
        {
            case ConsoleProtocol.PortReady:
                port.Ready = m.Value == 1;
                if (port.Ready)
                {
                    ControlOut.Enqueue(ConsoleProtocol.EncodeName(m.Id, port.Name!));
                    if (port.IsConsole)
                    {
                        ControlOut.Enqueue(ConsoleProtocol.Encode(m.Id, ConsoleProtocol.ConsolePort, 1));
                    }

                    port.SentOpen = null;
                    port.SentSize = default;
                    port.SentRefusals = port.Endpoint?.Refusals ?? 0; // refusals of earlier sessions are history
                }

                break;
            case ConsoleProtocol.PortOpen when m.Value <= 1:
                PeerOpen(port, m.Value == 1);
                break;
            case ConsoleProtocol.VopResize when m.Payload.Length == 4:
                port.Endpoint?.Resize(BinaryPrimitives.ReadUInt16LittleEndian(m.Payload), BinaryPrimitives.ReadUInt16LittleEndian(m.Payload.AsSpan(2)));
                break;
            default:
                Violation($"control event {m.Event} (value {m.Value}) is not valid from the driver");
                break;
        }
    }

    protected override int InboundParity => 1;

    protected override bool ArmQueue(int queue) => _q[queue].EnableNotifications();

    protected override bool Armable(ConsolePort port) => port.Ready;
}
