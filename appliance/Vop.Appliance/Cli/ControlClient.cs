using System.Net.Sockets;
using Vop.Appliance.Hosting;

namespace Vop.Appliance.Cli;

/// <summary>
/// Finds the daemons of a run directory by their control sockets (RUNDIR/control/*.sock) and sends them
/// one request each (<see cref="ControlProtocol"/>). Works from any network namespace: the sockets are
/// reached by path.
/// </summary>
internal static class ControlClient
{
    /// <summary>The control sockets under <paramref name="runDir"/>, by daemon name.</summary>
    public static IReadOnlyList<string> Sockets(string runDir)
    {
        string dir = RunDirectory.ControlDirectory(runDir);
        return Directory.Exists(dir) ? [.. Directory.EnumerateFiles(dir, "*.sock").Order(StringComparer.Ordinal)] : [];
    }

    /// <summary>The daemon's name from its control socket's path.</summary>
    public static string DaemonOf(string socket) => Path.GetFileNameWithoutExtension(socket);

    /// <summary>The answer to one request.</summary>
    /// <param name="Socket">Connected, positioned at the body; null unless the daemon answered ok.</param>
    /// <param name="Error">The daemon's refusal, or why it could not be asked.</param>
    /// <param name="Stale">The socket is left from a daemon that stopped (nobody listens).</param>
    public readonly record struct Answer(Socket? Socket, string? Error, bool Stale);

    public static Answer Request(string path, string request) => Request(path, request, TimeSpan.FromSeconds(5));

    /// <summary>As <see cref="Request(string, string)"/>, letting the daemon take <paramref name="answerWithin"/> to answer (a reload starts and stops links).</summary>
    public static Answer Request(string path, string request, TimeSpan answerWithin)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            socket.ReceiveTimeout = (int)answerWithin.TotalMilliseconds;
            ControlProtocol.WriteLine(socket, request);
            string? line = ControlProtocol.ReadLine(socket);
            if (line == ControlProtocol.Ok)
            {
                Socket answered = socket;
                socket = null!;
                return new Answer(answered, null, false);
            }

            return new Answer(null, line is null ? "the daemon closed without an answer"
                : line.StartsWith(ControlProtocol.ErrorPrefix, StringComparison.Ordinal) ? line[ControlProtocol.ErrorPrefix.Length..]
                : line.StartsWith(ControlProtocol.ConfigErrorPrefix, StringComparison.Ordinal) ? line
                : $"unexpected answer '{line}'", false);
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode switch
            {
                SocketError.ConnectionRefused or SocketError.AddressNotAvailable => new Answer(null, $"{path} is left from a daemon that stopped", true),
                SocketError.AccessDenied => new Answer(null, $"{path}: permission denied (control sockets are 0600: run as the daemon's user or root)", false),
                SocketError.TimedOut => new Answer(null, $"{path}: the daemon did not answer within {answerWithin.TotalSeconds:F0} s", false),
                _ => new Answer(null, $"{path}: {e.Message}", false),
            };
        }
        finally
        {
            socket?.Dispose();
        }
    }

    /// <summary>Reads what the daemon sends until it closes.</summary>
    public static byte[] ReadToEnd(Socket socket)
    {
        using var body = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = socket.Receive(buffer)) > 0)
        {
            body.Write(buffer, 0, n);
        }

        return body.ToArray();
    }
}
