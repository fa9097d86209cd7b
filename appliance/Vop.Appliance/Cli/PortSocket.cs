using System.Net.Sockets;

namespace Vop.Appliance.Cli;

/// <summary>Connects a CLI verb to a socket of the running daemon (RUNDIR/LINK/NAME.sock), with one clear line when it cannot.</summary>
internal static class PortSocket
{
    /// <summary>The link a socket path belongs to: the name of its directory.</summary>
    public static string LinkOf(string path) => Path.GetFileName(Path.GetDirectoryName(path)) ?? path;

    public static Socket? Connect(string path, string verb)
    {
        string link = LinkOf(path);
        string? dir = Path.GetDirectoryName(path);
        if (!File.Exists(path))
        {
            // Another socket of the link is there: the daemon runs, but this port is not configured.
            bool linkServed = dir is not null && Directory.Exists(dir) && Directory.EnumerateFiles(dir, "*.sock").Any();
            System.Console.Error.WriteLine(linkServed
                ? $"vop {verb}: link '{link}' has no {Path.GetFileNameWithoutExtension(path)} socket (no {path}; is that device configured on this link?)"
                : $"vop {verb}: no daemon serves link '{link}' (no {path}; is vop running, and with --run-dir?)");
            return null;
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            System.Console.Error.WriteLine(e.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => $"vop {verb}: no daemon serves link '{link}' ({path} is left from a daemon that stopped; is vop running?)",
                SocketError.AccessDenied => $"vop {verb}: {path}: permission denied (the daemon's sockets are 0600: run as its user or root)",
                _ => $"vop {verb}: cannot connect to {path}: {e.Message}",
            });
            return null;
        }
    }
}
