using System.Net.Sockets;

namespace Vop.Appliance.Cli;

/// <summary>
/// `vop ssh-proxy LINK`: bridges stdin/stdout to the link's <c>ssh</c> port socket, byte for byte, for
/// <c>ssh -o ProxyCommand='vop ssh-proxy card0' user@card0</c>.
/// </summary>
public static class SshProxy
{
    private const int SilenceSeconds = 12;

    public static int Run(string socketPath)
    {
        using Socket? socket = PortSocket.Connect(socketPath, "ssh-proxy");
        if (socket is null)
        {
            return 1;
        }

        using Stream stdin = System.Console.OpenStandardInput();
        using Stream stdout = System.Console.OpenStandardOutput();
        bool stdinEnded = false;
        var up = new Thread(() =>
        {
            var b = new byte[64 * 1024];
            try
            {
                int n;
                while ((n = stdin.Read(b, 0, b.Length)) > 0)
                {
                    socket.Send(b, 0, n, SocketFlags.None);
                }

                Volatile.Write(ref stdinEnded, true);
                socket.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
            {
            }
        })
        { IsBackground = true, Name = "ssh-proxy-up" };
        up.Start();

        var buffer = new byte[64 * 1024];
        long received = 0;
        bool reset = false;
        string link = PortSocket.LinkOf(socketPath);
        string port = Path.GetFileNameWithoutExtension(socketPath);

        // sshd greets first: silence this long means the card has not opened the port (its vop is not running,
        // or the link is down). Say so once and keep waiting: the session starts when the card comes. Longer
        // than the host's 10 s wait before it turns away a second session, which has its own message.
        using var silence = new Timer(
            _ =>
            {
                if (Interlocked.Read(ref received) == 0)
                {
                    System.Console.Error.WriteLine($"vop ssh-proxy: {link}: nothing from the card's {port} port for {SilenceSeconds} s; still waiting (is vop running on the card and the link up? see `vop status {link}`)");
                }
            },
            null,
            TimeSpan.FromSeconds(SilenceSeconds),
            Timeout.InfiniteTimeSpan);
        try
        {
            int n;
            while ((n = socket.Receive(buffer)) > 0)
            {
                Interlocked.Add(ref received, n);
                stdout.Write(buffer, 0, n);
                stdout.Flush();
            }
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            reset = e is SocketException { SocketErrorCode: SocketError.ConnectionReset };
        }

        if (received == 0 && reset)
        {
            // The host end turns away a second session while one is open (it drops the socket unread).
            System.Console.Error.WriteLine($"vop ssh-proxy: {link}: the {port} port is busy with another session (one at a time; is another ssh to {link} open?)");
            return 1;
        }

        if (received == 0 && !Volatile.Read(ref stdinEnded))
        {
            // The card end opened the port and closed it without a byte: its TCP connect failed (that is how
            // TcpPortEndpoint refuses a session), or the service there hung up before its greeting.
            string hint = port == "ssh" ? "is sshd running on the card?" : "does anything listen where the card's port connects?";
            System.Console.Error.WriteLine($"vop ssh-proxy: {link}: the card could not connect its {port} port ({hint})");
            return 1;
        }

        return 0;
    }
}
