using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

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

        string mode = force ? "force" : readOnly ? "readonly" : "rw";
        socket.Send(Encoding.ASCII.GetBytes($"\0vop1 {mode}\n"));
        string? saved = Stty("-g");
        Stty("raw -echo");
        WriteAll(1, Encoding.UTF8.GetBytes($"Connected to {socketPath}\r\nEscape character is ^] (Ctrl + ])\r\n"));
        SendSize(socket);
        using PosixSignalRegistration winch = PosixSignalRegistration.Create(PosixSignal.SIGWINCH, _ => SendSize(socket));

        var done = new ManualResetEventSlim();
        // Raw fds 0 and 1, not System.Console: its terminal layer buffers input by line and echoes it.
        var down = new Thread(() =>
        {
            var b = new byte[16 * 1024];
            try
            {
                int n;
                while ((n = socket.Receive(b)) > 0)
                {
                    WriteAll(1, b.AsSpan(0, n));
                }
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
            {
            }

            done.Set();
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

            done.Set();
        })
        { IsBackground = true, Name = "console-up" };
        up.Start();

        done.Wait();
        if (saved is not null)
        {
            Stty(saved);
        }

        WriteAll(1, "\r\n"u8);
        return 0;
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
                if (n >= 0 || Tmds.Linux.LibC.errno != 4)
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
                    if (n < 0 && Tmds.Linux.LibC.errno == 4)
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
            // TIOCGWINSZ on stdout: rows, cols.
            ushort* ws = stackalloc ushort[4];
            if (Tmds.Linux.LibC.ioctl(1, 0x5413, ws) != 0)
            {
                return;
            }

            int rows = ws[0];
            int cols = ws[1];
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
