using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Vop.Links;
using Vop.Links.Interop;

namespace Vop.VirtioConsole.Endpoints;

/// <summary>
/// Host end of a port: a UNIX socket at a stable path (mode 0600) that outlives card reboots.
/// <para>Stream mode (<c>ssh</c>): one client at a time; the port is open while it is connected; bytes pass
/// exactly, with back-pressure.</para>
/// <para>Console mode: always open toward the card so its output never blocks; output goes to a bounded
/// scrollback (replayed to each new client) and to every client; one writer, any number of read-only
/// watchers, and a client may take over the writer with force. A client that starts with the vop hello
/// (<c>\0vop1 MODE\n</c>) sends framed input: [u8 type][le16 length][data], type 0 = bytes, 1 = resize
/// (le16 cols, le16 rows); any other client is raw.</para>
/// </summary>
public sealed class SocketPortEndpoint : PortEndpoint
{
    public const int ScrollbackBytes = 64 * 1024;

    private readonly string _path;
    private readonly bool _console;
    private readonly Socket _listener;
    private readonly ByteQueue _scrollback = new(ScrollbackBytes);
    private readonly ByteQueue _streamInbound;
    private readonly object _gate = new();
    private readonly List<Client> _clients = [];
    private readonly Thread _acceptor;
    private Client? _writer;
    private volatile bool _disposed;
    private volatile bool _peerOpen;
    private readonly PtyMirror? _pty;

    public SocketPortEndpoint(string name, string path, bool console)
        : base(name)
    {
        _streamInbound = NewInbound(256 * 1024);
        _path = path;
        _console = console;
        _listener = PrivateSocket.Listen(path, 16);
        LocalOpen = console;
        if (console)
        {
            // Typing into the PTY counts as the writer's input while no socket client holds the seat.
            _pty = new PtyMirror(Path.ChangeExtension(path, ".pty"), data =>
            {
                if (_writer is null)
                {
                    Outbound.Write(data);
                }
            });
        }

        _acceptor = Faults.StartGuarded($"vop-port-{name}-accept", Accept);
    }

    public string SocketPath => _path;

    /// <summary>The console's pseudo-terminal for screen/minicom (console mode only).</summary>
    public string? PtyPath => _pty?.Path;

    public int Clients
    {
        get
        {
            lock (_gate)
            {
                return _clients.Count;
            }
        }
    }

    public byte[] Scrollback => _scrollback.Snapshot();

    public override int InboundSpace => _console ? int.MaxValue : _streamInbound.Space;

    public override void Deliver(ReadOnlySpan<byte> data)
    {
        if (!_console)
        {
            _streamInbound.Write(data);
            return;
        }

        _scrollback.Drop(data);
        _pty?.Write(data);
        lock (_gate)
        {
            foreach (Client c in _clients)
            {
                c.Output.Drop(data); // a slow watcher loses its oldest bytes; the card never waits
            }
        }
    }

    public override void PeerOpenChanged(bool open)
    {
        _peerOpen = open;
        if (!_console && !open)
        {
            // The card end closed the stream (or went away): end the client's session once its bytes are out.
            Client? c;
            lock (_gate)
            {
                c = _clients.FirstOrDefault();
            }

            c?.CloseAfterDrain();
        }
    }

    private void Accept()
    {
        while (!_disposed)
        {
            Socket s;
            try
            {
                s = _listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                if (_disposed)
                {
                    return;
                }

                continue;
            }

            if (!_console)
            {
                // PORT_OPEN carries no session id: a new stream session starts only once the card end has
                // closed the previous one, so a late close can never hit the new session.
                long deadline = Environment.TickCount64 + 10_000;
                while (_peerOpen && Environment.TickCount64 < deadline && !_disposed)
                {
                    Thread.Sleep(10);
                }
            }

            var client = new Client(this, s);
            lock (_gate)
            {
                if (!_console && _clients.Count > 0)
                {
                    s.Dispose(); // one stream session at a time
                    continue;
                }

                _clients.Add(client);
                if (_console)
                {
                    client.Output.Drop(_scrollback.Snapshot());
                }
                else
                {
                    _streamInbound.Clear();
                    Outbound.Clear();
                }

                _writer ??= client;
            }

            client.Start();
            if (!_console)
            {
                LocalOpen = true;
            }
        }
    }

    private void Input(Client from, ReadOnlySpan<byte> data)
    {
        if (_writer == from)
        {
            Outbound.Write(data);
        }
    }

    private void Hello(Client from, string mode)
    {
        lock (_gate)
        {
            if (mode == "force" && _writer != from)
            {
                Client? old = _writer;
                _writer = from;
                old?.Output.Drop(Encoding.ASCII.GetBytes("\r\n[vop: another client took over this console]\r\n"));
                Seat(old);
            }
            else if (mode == "readonly" && _writer == from)
            {
                _writer = _clients.FirstOrDefault(c => c != from && c.Mode != "readonly");
                Seat(_writer);
            }

            from.Mode = mode;
            Seat(from);
        }
    }

    /// <summary>
    /// Tells a client that sent the hello which seat it holds, in its output stream: <c>\0vop1 seat
    /// writer|watcher|busy\n</c> (watcher: it asked for read-only; busy: another client holds the seat, so
    /// it only watches until that one leaves). Raw clients are told nothing. Called under the gate.
    /// </summary>
    private void Seat(Client? c)
    {
        if (c is null || c.Mode == "raw")
        {
            return;
        }

        string seat = c == _writer ? "writer" : c.Mode == "readonly" ? "watcher" : "busy";
        c.Output.Drop(Encoding.ASCII.GetBytes($"\0vop1 seat {seat}\n"));
    }

    private void Gone(Client c)
    {
        lock (_gate)
        {
            _clients.Remove(c);
            if (_writer == c)
            {
                _writer = _clients.FirstOrDefault(x => x.Mode != "readonly");
                Seat(_writer);
            }
        }

        if (!_console)
        {
            LocalOpen = false;
        }
    }

    public override void Dispose()
    {
        _disposed = true;
        _listener.Dispose();
        _pty?.Dispose();
        lock (_gate)
        {
            foreach (Client c in _clients.ToArray())
            {
                c.Close();
            }
        }

        try
        {
            File.Delete(_path);
        }
        catch (IOException)
        {
        }

        base.Dispose();
    }

    private sealed class Client
    {
        private readonly SocketPortEndpoint _owner;
        private readonly Socket _socket;
        private volatile bool _closing;

        public Client(SocketPortEndpoint owner, Socket socket)
        {
            _owner = owner;
            _socket = socket;
            Output = new ByteQueue(owner._console ? 1024 * 1024 : 64 * 1024);
        }

        public ByteQueue Output { get; }

        public string Mode { get; set; } = "raw";

        private bool _helloDone;

        public void Start()
        {
            Faults.StartGuarded("vop-port-client-in", ReadLoop);
            Faults.StartGuarded("vop-port-client-out", WriteLoop);
        }

        public void CloseAfterDrain() => _closing = true;

        public void Close()
        {
            _closing = true;
            Output.Close();
            try
            {
                _socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }

        private void ReadLoop()
        {
            var buffer = new byte[16 * 1024];
            bool framed = false;
            bool first = true;
            var pending = new List<byte>();
            try
            {
                while (true)
                {
                    int n = _socket.Receive(buffer);
                    if (n == 0)
                    {
                        break;
                    }

                    ReadOnlySpan<byte> data = buffer.AsSpan(0, n);
                    if (first && _owner._console && data[0] == 0)
                    {
                        framed = true;
                    }

                    first = false;
                    if (!framed)
                    {
                        _owner.Input(this, data);
                        continue;
                    }

                    pending.AddRange(data);
                    Frames(pending);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }

            if (!_owner._console)
            {
                // Our client is done sending: let what it sent reach the card before the port closes, unless the
                // card end already ended the session (then nothing will carry it, and the next client waits).
                long deadline = Environment.TickCount64 + 5000;
                while (_owner.Outbound.Count > 0 && Environment.TickCount64 < deadline && !_closing)
                {
                    Thread.Sleep(10);
                }
            }

            _owner.Gone(this);
            Close();
        }

        private void Frames(List<byte> pending)
        {
            while (true)
            {
                if (!_helloDone && pending.Count > 0 && pending[0] == 0)
                {
                    int nl = pending.IndexOf((byte)'\n');
                    if (nl < 0)
                    {
                        return;
                    }

                    string hello = Encoding.ASCII.GetString([.. pending.GetRange(1, nl - 1)]);
                    pending.RemoveRange(0, nl + 1);
                    _helloDone = true;
                    string[] words = hello.Split(' ');
                    _owner.Hello(this, words.Length > 1 ? words[1] : "raw");
                    continue;
                }

                if (pending.Count < 3)
                {
                    return;
                }

                int type = pending[0];
                int len = pending[1] | (pending[2] << 8);
                if (pending.Count < 3 + len)
                {
                    return;
                }

                byte[] body = [.. pending.GetRange(3, len)];
                pending.RemoveRange(0, 3 + len);
                if (type == 1 && len == 4)
                {
                    ushort cols = BinaryPrimitives.ReadUInt16LittleEndian(body);
                    ushort rows = BinaryPrimitives.ReadUInt16LittleEndian(body.AsSpan(2));
                    if (_owner._writer == this)
                    {
                        _owner.RequestedSize = (cols, rows);
                        _owner.Changed?.Invoke();
                    }
                }
                else if (type == 0)
                {
                    _owner.Input(this, body);
                }
            }
        }

        private void WriteLoop()
        {
            var buffer = new byte[16 * 1024];
            ByteQueue source = _owner._console ? Output : _owner._streamInbound;
            try
            {
                while (!Output.IsClosed)
                {
                    int n = source.ReadWait(buffer, 100);
                    if (n > 0)
                    {
                        int off = 0;
                        while (off < n)
                        {
                            off += _socket.Send(buffer, off, n - off, SocketFlags.None);
                        }
                    }
                    else if (_closing && source.Count == 0)
                    {
                        break;
                    }
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }

            Close();
        }
    }
}
