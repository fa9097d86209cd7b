using System.Net.Sockets;
using System.Text;

namespace Vop.Appliance.Hosting;

/// <summary>
/// The control socket's protocol (docs/operations.md, "Control socket"): the client sends one request line,
/// <c>status</c>, <c>capture LINK</c> or <c>reload</c>; the daemon answers one line, <c>ok</c>,
/// <c>error WHAT</c> or (reload) <c>config-error WHAT</c>, then the body: the status document (JSON, then the
/// daemon closes), the capture record stream (until the client closes), or one line saying what the reload
/// changed. Lines are read a byte at a time so nothing of the body is consumed with them.
/// </summary>
public static class ControlProtocol
{
    public const string Status = "status";
    public const string Capture = "capture";
    public const string Reload = "reload";
    public const string Ok = "ok";
    public const string ErrorPrefix = "error ";

    /// <summary>A reload refused because the config file does not validate: nothing changed.</summary>
    public const string ConfigErrorPrefix = "config-error ";

    /// <summary>Longest request or answer line; a longer one is refused.</summary>
    public const int MaxLine = 512;

    public static void WriteLine(Socket socket, string line) => socket.Send(Encoding.UTF8.GetBytes(line + "\n"), SocketFlags.None);

    /// <summary>One line without its newline; null when the peer closed first or the line is longer than <see cref="MaxLine"/>.</summary>
    public static string? ReadLine(Socket socket)
    {
        Span<byte> line = stackalloc byte[MaxLine];
        Span<byte> one = stackalloc byte[1];
        for (int n = 0; n < line.Length; n++)
        {
            if (socket.Receive(one, SocketFlags.None) == 0)
            {
                return null;
            }

            if (one[0] == (byte)'\n')
            {
                return Encoding.UTF8.GetString(line[..n]);
            }

            line[n] = one[0];
        }

        return null;
    }
}
