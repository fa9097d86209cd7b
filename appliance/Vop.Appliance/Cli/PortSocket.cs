using System.Net.Sockets;

namespace Vop.Appliance.Cli;

/// <summary>Connects a CLI verb to a port socket of the running daemon, with one clear line when it cannot.</summary>
internal static class PortSocket
{
    public static Socket? Connect(string path, string verb)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            System.Console.Error.WriteLine($"vop {verb}: cannot connect to {path}: {e.Message} (is the vop daemon running with a console device?)");
            return null;
        }
    }
}
