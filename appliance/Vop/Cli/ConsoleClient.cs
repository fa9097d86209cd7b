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
public static class ConsoleClient
{
    private const byte Escape = 0x1d; // Ctrl-]

    public static int Run(string socketPath, bool force, bool readOnly)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        }
        catch (SocketException e)
        {
            System.Console.Error.WriteLine($"vop console: cannot connect to {socketPath}: {e.Message} (is the vop daemon running with a console device?)");
            return 1;
        }

        string mode = force ? "force" : readOnly ? "readonly" : "rw";
        socket.Send(Encoding.ASCII.GetBytes($"\0vop1 {mode}\n"));
        string? saved = Stty("-g");
        Stty("raw -echo");
        System.Console.Out.Write($"Connected to {socketPath}\r\nEscape character is ^] (Ctrl + ])\r\n");
        System.Console.Out.Flush();
        SendSize(socket);
        using PosixSignalRegistration winch = PosixSignalRegistration.Create(PosixSignal.SIGWINCH, _ => SendSize(socket));

        var done = new ManualResetEventSlim();
        var down = new Thread(() =>
        {
            using Stream stdout = System.Console.OpenStandardOutput();
            var b = new byte[16 * 1024];
            try
            {
                int n;
                while ((n = socket.Receive(b)) > 0)
                {
                    stdout.Write(b, 0, n);
                    stdout.Flush();
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
            using Stream stdin = System.Console.OpenStandardInput();
            var b = new byte[4096];
            try
            {
                int n;
                while ((n = stdin.Read(b, 0, b.Length)) > 0)
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

        System.Console.Out.Write("\r\n");
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

    private static void SendSize(Socket socket)
    {
        try
        {
            int cols = System.Console.WindowWidth;
            int rows = System.Console.WindowHeight;
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
