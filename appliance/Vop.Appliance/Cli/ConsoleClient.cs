using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Vop.Links.Interop;

namespace Vop.Appliance.Cli;

/// <summary>
/// `vop console LINK`: attaches the terminal to the link's console port in raw mode, like virsh console:
/// prints "Escape character is ^]" once attached, leaves on Ctrl-], forwards window size changes.
/// Speaks the framed client protocol of the port socket ([type][le16 len][data]; 0 bytes, 1 resize).
/// </summary>
public static unsafe class ConsoleClient
{
    private const byte Escape = 0x1d; // Ctrl-]

    public static int Run(string socketPath, bool force, bool readOnly)
    {
        using Socket? socket = PortSocket.Connect(socketPath, "console");
        if (socket is null)
        {
            return 1;
        }

        string link = PortSocket.LinkOf(socketPath);
        string port = Path.GetFileNameWithoutExtension(socketPath);
        string mode = force ? "force" : readOnly ? "readonly" : "rw";
        socket.Send(Encoding.ASCII.GetBytes($"\0vop1 {mode}\n"));
        string? saved = Stty("-g");
        Stty("raw -echo");
        WriteAll(1, Encoding.UTF8.GetBytes($"Connected to {socketPath}\r\nEscape character is ^] (Ctrl + ])\r\n"));
        SendSize(socket);
        using PosixSignalRegistration winch = PosixSignalRegistration.Create(PosixSignal.SIGWINCH, _ => SendSize(socket));

        // Not a ManualResetEventSlim: the thread still reading when we return sets it later, and that must not
        // meet a disposed event.
        var done = new TaskCompletionSource();
        // Raw fds 0 and 1, not System.Console: its terminal layer buffers input by line and echoes it.
        var down = new Thread(() =>
        {
            var b = new byte[16 * 1024];
            var seats = new SeatFilter();
            try
            {
                int n;
                while ((n = socket.Receive(b)) > 0)
                {
                    seats.Feed(b.AsSpan(0, n), data => WriteAll(1, data), seat => SeatLine(link, port, seat));
                }
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
            {
            }

            done.TrySetResult();
        })
        { IsBackground = true, Name = "console-down" };
        down.Start();

        var up = new Thread(() =>
        {
            var b = new byte[4096];
            try
            {
                int n;
                while ((n = ReadSome(0, b)) > 0)
                {
                    int esc = Array.IndexOf(b, Escape, 0, n);
                    int len = esc >= 0 ? esc : n;
                    if (len > 0 && !readOnly)
                    {
                        socket.Send(Frame(0, b.AsSpan(0, len)));
                    }

                    if (esc >= 0)
                    {
                        break;
                    }
                }
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
            {
            }

            done.TrySetResult();
        })
        { IsBackground = true, Name = "console-up" };
        up.Start();

        done.Task.Wait();
        if (saved is not null)
        {
            Stty(saved);
        }

        WriteAll(1, "\r\n"u8);
        return 0;
    }

    /// <summary>The server's word on our seat, one line on stderr (the terminal is raw: \r\n).</summary>
    private static void SeatLine(string link, string port, string seat)
    {
        string? line = seat switch
        {
            "busy" => $"vop console: {link} {port} is in use by another client; read-only (use --force to take over)",
            "watcher" => $"vop console: {link} {port}: read-only (--readonly); what you type is not sent",
            "writer" => null, // the normal case says nothing
            _ => null,
        };
        if (line is not null)
        {
            WriteAll(2, Encoding.UTF8.GetBytes(line + "\r\n"));
        }
    }

    /// <summary>
    /// Takes the server's seat notices (<c>\0vop1 seat writer|watcher|busy\n</c>) out of the console output
    /// and passes every other byte through, in order, including NULs that start no notice.
    /// </summary>
    internal sealed class SeatFilter
    {
        private static readonly byte[] s_prefix = "\0vop1 "u8.ToArray();
        private const int MaxNotice = 64;
        private readonly List<byte> _held = [];

        public void Feed(ReadOnlySpan<byte> data, Action<ReadOnlySpan<byte>> output, Action<string> seat)
        {
            int from = 0;
            for (int i = 0; i < data.Length; i++)
            {
                if (_held.Count == 0)
                {
                    if (data[i] != 0)
                    {
                        continue;
                    }

                    output(data[from..i]);
                    _held.Add(0);
                    from = i + 1;
                    continue;
                }

                _held.Add(data[i]);
                from = i + 1;
                int n = _held.Count;
                if (n <= s_prefix.Length ? _held[n - 1] != s_prefix[n - 1] : n > MaxNotice)
                {
                    Release(output); // not a notice after all
                }
                else if (data[i] == (byte)'\n')
                {
                    string notice = Encoding.ASCII.GetString([.. _held.GetRange(s_prefix.Length, n - s_prefix.Length - 1)]);
                    _held.Clear();
                    if (notice.StartsWith("seat ", StringComparison.Ordinal))
                    {
                        seat(notice[5..]);
                    }
                }
            }

            if (_held.Count == 0)
            {
                output(data[from..]);
            }
        }

        private void Release(Action<ReadOnlySpan<byte>> output)
        {
            // The byte that broke the match may itself start a notice.
            bool restart = _held.Count > 1 && _held[^1] == 0;
            byte[] held = [.. _held.GetRange(0, restart ? _held.Count - 1 : _held.Count)];
            _held.Clear();
            output(held);
            if (restart)
            {
                _held.Add(0);
            }
        }
    }

    private static byte[] Frame(byte type, ReadOnlySpan<byte> data)
    {
        var f = new byte[3 + data.Length];
        f[0] = type;
        f[1] = (byte)data.Length;
        f[2] = (byte)(data.Length >> 8);
        data.CopyTo(f.AsSpan(3));
        return f;
    }

    private static int ReadSome(int fd, byte[] buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                long n = Tmds.Linux.LibC.read(fd, p, (Tmds.Linux.size_t)buffer.Length);
                if (n >= 0 || Errno.Last != Tmds.Linux.LibC.EINTR)
                {
                    return (int)Math.Max(n, 0);
                }
            }
        }
    }

    private static void WriteAll(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            int off = 0;
            while (off < data.Length)
            {
                long n = Tmds.Linux.LibC.write(fd, p + off, (Tmds.Linux.size_t)(data.Length - off));
                if (n <= 0)
                {
                    if (n < 0 && Errno.Last == Tmds.Linux.LibC.EINTR)
                    {
                        continue;
                    }

                    return;
                }

                off += (int)n;
            }
        }
    }

    private static void SendSize(Socket socket)
    {
        try
        {
            // The window size of stdout.
            Tmds.Linux.winsize ws;
            if (Tmds.Linux.LibC.ioctl(1, Tmds.Linux.LibC.TIOCGWINSZ, &ws) != 0)
            {
                return;
            }

            int rows = ws.ws_row;
            int cols = ws.ws_col;
            if (cols > 0 && rows > 0)
            {
                socket.Send(Frame(1, [(byte)cols, (byte)(cols >> 8), (byte)rows, (byte)(rows >> 8)]));
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Runs stty on the controlling terminal; returns its output (for -g) or null when there is no terminal.</summary>
    private static string? Stty(string args)
    {
        if (!File.Exists("/dev/tty") || System.Console.IsInputRedirected)
        {
            return null;
        }

        var psi = new ProcessStartInfo("/bin/sh", ["-c", $"stty {args} < /dev/tty"]) { RedirectStandardOutput = true };
        using Process? p = Process.Start(psi);
        string? output = p?.StandardOutput.ReadToEnd().Trim();
        p?.WaitForExit();
        return p?.ExitCode == 0 ? output : null;
    }
}
