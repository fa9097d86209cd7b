using System.Net;
using System.Net.Sockets;
using Vop.Links;

namespace Vop.VirtioConsole.Endpoints;

/// <summary>
/// Card end of a stream port such as <c>ssh</c>: every time the host end opens the port, connect to the
/// configured TCP endpoint and carry bytes exactly, both ways; close with the port (after the bytes that
/// came before the close are written). When the TCP side closes, the port closes toward the host once
/// the bytes before it have gone out.
/// </summary>
public sealed class TcpPortEndpoint : PortEndpoint
{
    private readonly IPEndPoint _target;
    private readonly ByteQueue _inbound;
    private readonly object _gate = new();
    private Session? _session;

    public TcpPortEndpoint(string name, IPEndPoint target)
        : base(name)
    {
        _inbound = NewInbound(256 * 1024);
        _target = target;
    }

    public override int InboundSpace => _inbound.Space;

    public override void Deliver(ReadOnlySpan<byte> data)
    {
        if (Volatile.Read(ref _session) is not null)
        {
            _inbound.Write(data);
        }
    }

    public override void PeerOpenChanged(bool open)
    {
        Session? previous;
        lock (_gate)
        {
            previous = _session;
            if (!open)
            {
                if (previous is not null)
                {
                    previous.Closing = true; // the writer drains what the host sent, then closes
                }

                return;
            }
        }

        if (previous is not null)
        {
            previous.Closing = true;
            previous.Ended.Wait(3000);
        }

        lock (_gate)
        {
            if (_session is null)
            {
                Connect();
            }
        }
    }

    private void Connect()
    {
        var socket = new Socket(_target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.Connect(_target);
        }
        catch (SocketException)
        {
            socket.Dispose();
            Refuse(); // the host end's session opens and ends without a byte: its client sees EOF, not silence
            return;
        }

        _inbound.Clear();
        Outbound.Clear();
        var session = new Session(socket);
        _session = session;
        LocalOpen = true;
        Faults.StartGuarded($"vop-port-{Name}-in", () => FromTcp(session));
        Faults.StartGuarded($"vop-port-{Name}-out", () => ToTcp(session));
    }

    private void FromTcp(Session s)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int n;
            while ((n = s.Socket.Receive(buffer)) > 0)
            {
                Outbound.Write(buffer.AsSpan(0, n));
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        // The TCP side is done: let its last bytes reach the host before the port closes.
        long deadline = Environment.TickCount64 + 10_000;
        while (Outbound.Count > 0 && Environment.TickCount64 < deadline && !s.Closing)
        {
            Thread.Sleep(5);
        }

        s.Closing = true;
        s.ReaderDone.Set();
    }

    private void ToTcp(Session s)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int n = _inbound.ReadWait(buffer, 50);
                if (n > 0)
                {
                    int off = 0;
                    while (off < n)
                    {
                        off += s.Socket.Send(buffer, off, n - off, SocketFlags.None);
                    }
                }
                else if (s.Closing)
                {
                    break;
                }
            }

            s.Socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        // Give the TCP side a moment to finish its reply, then end the session (this thread owns the end).
        s.ReaderDone.Wait(2000);
        s.Socket.Dispose();
        s.ReaderDone.Wait(1000);
        lock (_gate)
        {
            if (_session == s)
            {
                _session = null;
            }
        }

        LocalOpen = false;
        s.Ended.Set();
    }

    public override void Dispose()
    {
        Session? s = _session;
        if (s is not null)
        {
            s.Closing = true;
            s.Socket.Dispose();
        }

        base.Dispose();
    }

    private sealed class Session
    {
        private volatile bool _closing;

        public Session(Socket socket)
        {
            Socket = socket;
        }

        public Socket Socket { get; }

        public bool Closing
        {
            get => _closing;
            set => _closing = value;
        }

        public ManualResetEventSlim ReaderDone { get; } = new();

        public ManualResetEventSlim Ended { get; } = new();
    }
}
