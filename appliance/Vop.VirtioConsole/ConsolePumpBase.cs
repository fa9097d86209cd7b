using Vop.Links;
using Vop.Links.Devices;
using Vop.Links.Doorbells;
using Vop.Links.Interop;
using Vop.Links.Rings;
using Vop.Links.Stats;

namespace Vop.VirtioConsole;

/// <summary>
/// What both roles' console pumps share: one thread per console device (console traffic is light), the
/// port table, the outgoing control message queue, protocol violations as a quarantine, and the sleep:
/// epoll on the link's doorbells and the endpoints' wake-up eventfd.
/// </summary>
internal abstract class ConsolePumpBase : PumpThread
{
    protected const int ChunkBytes = ConsoleProtocol.PortBufferSize;

    private readonly ushort[] _vectors;

    protected ConsolePumpBase(string name, ILinkEnd end, IReadOnlyList<ushort> vectors, EventFdDoorbell work, int ports)
        : base($"vop-console-{name}")
    {
        Name = name;
        End = end;
        _vectors = [.. vectors.Distinct()];
        Work = work;
        Ports = new ConsolePort[ports];
        for (int i = 0; i < ports; i++)
        {
            Ports[i] = new ConsolePort(i);
        }
    }

    public string Name { get; }

    protected ILinkEnd End { get; }

    protected EventFdDoorbell Work { get; }

    protected ConsolePort[] Ports { get; }

    protected Queue<byte[]> ControlOut { get; } = new();

    private RingErrorKind _fault;

    /// <summary>None while healthy; <see cref="RingErrorKind.Control"/> after a protocol violation, a ring fault, or a crash of the pump.</summary>
    public RingErrorKind Fault => _fault == RingErrorKind.None && Crash is not null ? RingErrorKind.PumpFault : _fault;

    /// <summary>Why the device was quarantined, for the log.</summary>
    public string? FaultDetail { get; private set; }

    protected override void OnStopped()
    {
        foreach (ConsolePort p in Ports)
        {
            if (p.PeerOpen)
            {
                p.Endpoint?.PeerOpenChanged(false);
            }
        }
    }

    /// <summary>The statistics cell of <paramref name="queue"/>.</summary>
    protected abstract QueueStats StatsOf(int queue);

    private int ControlInbound => ConsoleProtocol.ControlReceiveQueue + InboundParity;

    /// <summary>A control protocol violation: quarantines the device, counted as ring error kind control on the inbound control queue.</summary>
    protected void Violation(string why)
    {
        if (_fault == RingErrorKind.None)
        {
            _fault = RingErrorKind.Control;
            FaultDetail = why;
            StatsOf(ControlInbound).RingErrors[(int)RingErrorKind.Control]++;
        }
    }

    /// <summary>A queue quarantined itself (and counted it already).</summary>
    protected void RingFault(RingErrorKind kind)
    {
        if (_fault == RingErrorKind.None && kind != RingErrorKind.None)
        {
            _fault = kind;
            FaultDetail = kind.Label();
        }
    }

    protected override void OnCrash(Exception e)
    {
        FaultDetail = Faults.Describe(e);
        StatsOf(ControlInbound).RingErrors[(int)RingErrorKind.PumpFault]++;
    }

    /// <summary>One pass over every queue; returns whether anything moved.</summary>
    protected abstract bool Pass();

    /// <summary>
    /// 0 when this side takes from even queues (driver: receive and control receive), 1 when from odd ones
    /// (device: transmit and control transmit); the other parity is where it puts.
    /// </summary>
    protected abstract int InboundParity { get; }

    /// <summary>Asks the peer to notify on <paramref name="queue"/>, then re-checks; true when work is already there.</summary>
    protected abstract bool ArmQueue(int queue);

    /// <summary>Whether a port's queues may be armed (the device waits for PORT_READY).</summary>
    protected virtual bool Armable(ConsolePort port) => true;

    /// <summary>
    /// Arms notifications on every queue; true when work is already there. Ask for notifications only where
    /// we wait: queues we take from, and queues we put into (or the control queue out) where data waits
    /// for a buffer. A full endpoint is retried on the 100 ms tick.
    /// </summary>
    protected bool Arm()
    {
        int inbound = InboundParity;
        bool more = ArmQueue(ConsoleProtocol.ControlReceiveQueue + inbound);
        if (ControlOut.Count > 0)
        {
            more |= ArmQueue(ConsoleProtocol.ControlReceiveQueue + 1 - inbound);
        }

        foreach (ConsolePort p in Ports)
        {
            if (!Armable(p) || p.Endpoint is not { } e)
            {
                continue;
            }

            int rxq = ConsoleProtocol.ReceiveQueue(p.Id);
            if (e.InboundSpace >= ChunkBytes)
            {
                more |= ArmQueue(rxq + inbound);
            }

            if (p.PeerOpen && e.Outbound.Count > 0)
            {
                more |= ArmQueue(rxq + 1 - inbound);
            }

            more |= WantsOpenUpdate(p, e) || p.SentRefusals != e.Refusals || (e.RequestedSize != p.SentSize && e.RequestedSize.Cols != 0);
        }

        return more;
    }

    protected virtual void Begin()
    {
    }

    protected override void Run()
    {
        using var epoll = new Epoll(16);
        // Only this device's own vectors: another device's eventfds are its pump's to drain.
        var fds = new HashSet<int> { StopBell.Fd, Work.Fd };
        foreach (ushort v in _vectors)
        {
            fds.Add(End.LocalDoorbell(v).Fd);
        }

        foreach (int fd in fds)
        {
            epoll.Add(fd);
        }

        Begin();
        while (!Stopping && Fault == RingErrorKind.None)
        {
            if (Pass())
            {
                continue;
            }

            if (Arm())
            {
                continue;
            }

            int n = epoll.Wait(100);
            for (int i = 0; i < n; i++)
            {
                int fd = epoll.ReadyFd(i);
                if (fd == Work.Fd)
                {
                    Work.Drain();
                }
                else if (fd != StopBell.Fd)
                {
                    foreach (ushort v in _vectors)
                    {
                        if (End.LocalDoorbell(v).Fd == fd)
                        {
                            End.LocalDoorbell(v).Drain();
                        }
                    }
                }
            }
        }
    }

    /// <summary>PORT_OPEN from the peer: an open applies at once, a close once the peer's earlier bytes are in.</summary>
    protected static void PeerOpen(ConsolePort port, bool open)
    {
        if (open)
        {
            if (port.ClosePending)
            {
                // A new session before the old close settled: close the old one first.
                port.ClosePending = false;
                port.PeerOpen = false;
                port.Endpoint?.PeerOpenChanged(false);
            }

            if (!port.PeerOpen)
            {
                port.PeerOpen = true;
                port.Endpoint?.PeerOpenChanged(true);
            }
        }
        else if (port.PeerOpen)
        {
            port.ClosePending = true;
        }
    }

    /// <summary>Applies a pending close once the port's incoming queue is drained.</summary>
    protected static void SettleClose(ConsolePort port, bool drained)
    {
        if (port.ClosePending && drained)
        {
            port.ClosePending = false;
            port.PeerOpen = false;
            port.Endpoint?.PeerOpenChanged(false);
        }
    }

    /// <summary>Our PORT_OPEN state changed; a close waits until our queued bytes went out (while they can).</summary>
    protected static bool WantsOpenUpdate(ConsolePort p, PortEndpoint e) =>
        p.SentOpen != e.LocalOpen && (e.LocalOpen || e.Outbound.Count == 0 || !p.PeerOpen);

    /// <summary>
    /// Queues our PORT_OPEN state for the peer when it changed (a close only once our bytes are out), and a
    /// refused session as PORT_OPEN 1 then 0: the peer's session opens and ends without a byte.
    /// </summary>
    protected void QueueOpenState(ConsolePort p, PortEndpoint e)
    {
        int refusals = e.Refusals;
        if (p.SentRefusals != refusals)
        {
            p.SentRefusals = refusals;
            if (p.SentOpen != true && !e.LocalOpen)
            {
                ControlOut.Enqueue(ConsoleProtocol.Encode((uint)p.Id, ConsoleProtocol.PortOpen, 1));
                ControlOut.Enqueue(ConsoleProtocol.Encode((uint)p.Id, ConsoleProtocol.PortOpen, 0));
                p.SentOpen = false;
            }
        }

        if (WantsOpenUpdate(p, e))
        {
            bool open = e.LocalOpen;
            ControlOut.Enqueue(ConsoleProtocol.Encode((uint)p.Id, ConsoleProtocol.PortOpen, open ? (ushort)1 : (ushort)0));
            p.SentOpen = open;
        }
    }

    /// <summary>Copies the readable bytes of a chain out of the window.</summary>
    protected static byte[] Gather(in Links.Windows.WindowAccessor w, ReadOnlySpan<BufferSegment> segs, ulong total)
    {
        var data = new byte[total];
        int at = 0;
        foreach (BufferSegment s in segs)
        {
            if (s.DeviceWritable)
            {
                break;
            }

            w.Bytes(s.Offset, (int)s.Length).CopyTo(data.AsSpan(at));
            at += (int)s.Length;
        }

        return data;
    }
}
