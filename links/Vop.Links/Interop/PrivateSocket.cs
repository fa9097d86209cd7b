using System.Net.Sockets;

namespace Vop.Links.Interop;

/// <summary>A UNIX stream listener at a stable path, mode 0600, replacing a stale socket left by a crash.</summary>
public static class PrivateSocket
{
    public static Socket Listen(string path, int backlog)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (File.Exists(path))
        {
            File.Delete(path);
        }

        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(backlog);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }
}
