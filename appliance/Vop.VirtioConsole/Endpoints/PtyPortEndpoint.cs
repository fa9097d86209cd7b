using System.Diagnostics;
using System.Text;
using Tmds.Linux;
using Vop.Links.Interop;
using Vop.Links;

namespace Vop.VirtioConsole.Endpoints;

/// <summary>
/// Card end of the <c>console</c> port: a login session on a fresh pseudo-terminal, getty-like: the
/// command (default /bin/login) runs as a session leader with the PTY as its controlling terminal, and is
/// started again a second after it exits. Window size changes from the host are applied to the PTY.
/// </summary>
public sealed unsafe class PtyPortEndpoint : PortEndpoint
{
    private readonly string[] _command;
    private readonly ByteQueue _inbound;
    private readonly object _gate = new();
    private readonly Thread _supervisor;
    private SafeFd? _master;
    private Process? _child;
    private (ushort Cols, ushort Rows) _size = (80, 25);
    private volatile bool _disposed;

    public PtyPortEndpoint(string name, string[] command)
        : base(name)
    {
        _inbound = NewInbound(64 * 1024);
        _command = command.Length > 0 ? command : ["/bin/login"];
        _supervisor = Faults.StartGuarded($"vop-port-{name}-pty", Supervise);
    }

    public override int InboundSpace => _inbound.Space;

    public override void Deliver(ReadOnlySpan<byte> data) => _inbound.Write(data);

    public override void Resize(ushort cols, ushort rows)
    {
        lock (_gate)
        {
            _size = (cols, rows);
            if (_master is { } m)
            {
                Apply(m.Fd, _size);
            }
        }
    }

    private static void Apply(int fd, (ushort Cols, ushort Rows) size)
    {
        var ws = new PtyInterop.WinSize { Cols = size.Cols, Rows = size.Rows };
        _ = PtyInterop.IoctlWinSize(fd, PtyInterop.TIOCSWINSZ, &ws);
    }

    private void Supervise()
    {
        while (!_disposed)
        {
            try
            {
                RunSession();
            }
            catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                Outbound.Write(Encoding.UTF8.GetBytes($"\r\n[vop: console session failed: {e.Message}]\r\n"));
            }

            LocalOpen = false;
            for (int i = 0; i < 10 && !_disposed; i++)
            {
                Thread.Sleep(100);
            }
        }
    }

    private void RunSession()
    {
        int fd = PtyInterop.PosixOpenpt(PtyInterop.O_RDWR | PtyInterop.O_NOCTTY | PtyInterop.O_CLOEXEC);
        if (fd < 0 || PtyInterop.Grantpt(fd) != 0 || PtyInterop.Unlockpt(fd) != 0)
        {
            throw new IOException("cannot allocate a pseudo-terminal");
        }

        var master = new SafeFd(fd);
        byte* name = stackalloc byte[128];
        if (PtyInterop.PtsnameR(fd, name, 128) != 0)
        {
            master.Dispose();
            throw new IOException("ptsname failed");
        }

        string pts = Encoding.ASCII.GetString(name, new ReadOnlySpan<byte>(name, 128).IndexOf((byte)0));
        lock (_gate)
        {
            _master = master;
            Apply(fd, _size);
        }

        // The shell makes the PTY stdin/stdout/stderr; setsid -c makes it the controlling terminal (-c, not
        // --ctty: busybox's setsid on a small card knows only the short form; util-linux takes both).
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec <\"$0\" >\"$0\" 2>&1; exec setsid -c \"$@\"");
        psi.ArgumentList.Add(pts);
        foreach (string a in _command)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["TERM"] = "xterm-256color";
        using Process child = Process.Start(psi)!;
        _child = child;
        _inbound.Clear();
        LocalOpen = true;
        var writer = Faults.StartGuarded($"vop-port-{Name}-pty-out", () => WriteLoop(fd, child));

        var buffer = new byte[4096];
        fixed (byte* p = buffer)
        {
            while (!_disposed)
            {
                long n = LibC.read(fd, p, (size_t)buffer.Length);
                if (n <= 0)
                {
                    if (n < 0 && LibC.errno == Errno.EINTR)
                    {
                        continue;
                    }

                    break; // EIO: every process holding the terminal has gone
                }

                // Console output never waits for the host: the host end keeps a scrollback.
                Outbound.Write(buffer.AsSpan(0, (int)n));
            }
        }

        if (!child.HasExited)
        {
            _ = LibC.kill(-child.Id, 1); // SIGHUP to the session, as a hangup would
            child.WaitForExit(2000);
        }

        lock (_gate)
        {
            _master = null;
        }

        writer.Join(1000);
        master.Dispose();
    }

    private void WriteLoop(int fd, Process child)
    {
        var buffer = new byte[4096];
        while (!_disposed && !child.HasExited)
        {
            int n = _inbound.ReadWait(buffer, 100);
            fixed (byte* p = buffer)
            {
                int off = 0;
                while (off < n)
                {
                    long w = LibC.write(fd, p + off, (size_t)(n - off));
                    if (w <= 0)
                    {
                        return;
                    }

                    off += (int)w;
                }
            }
        }
    }

    public override void Dispose()
    {
        _disposed = true;
        if (_child is { HasExited: false } c)
        {
            _ = LibC.kill(-c.Id, 1);
            _ = LibC.kill(c.Id, 9);
        }

        _supervisor.Join(3000);
        base.Dispose();
    }
}
