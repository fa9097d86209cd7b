using System.Net.Sockets;

namespace Vop.Appliance.Cli;

/// <summary>
/// `vop ssh-proxy LINK`: bridges stdin/stdout to the link's <c>ssh</c> port socket, byte for byte, for
/// <c>ssh -o ProxyCommand='vop ssh-proxy card0' user@card0</c>.
/// </summary>
public static class SshProxy
{
    public static int Run(string socketPath)
    {
        using Socket? socket = PortSocket.Connect(socketPath, "ssh-proxy");
        if (socket is null)
        {
            return 1;
        }

        using Stream stdin = System.Console.OpenStandardInput();
        using Stream stdout = System.Console.OpenStandardOutput();
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

                socket.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
            {
            }
        })
        { IsBackground = true, Name = "ssh-proxy-up" };
        up.Start();

        var buffer = new byte[64 * 1024];
        try
        {
            int n;
            while ((n = socket.Receive(buffer)) > 0)
            {
                stdout.Write(buffer, 0, n);
                stdout.Flush();
            }
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
        }

        return 0;
    }
}
