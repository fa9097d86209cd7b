using System.Text;

namespace Vop.Appliance.Config;

/// <summary>The rules for the paths a config names: unix sockets and run directories.</summary>
internal static class PathRules
{
    /// <summary>sockaddr_un.sun_path holds 108 bytes including the terminating NUL.</summary>
    public const int MaxSocketPathBytes = 107;

    public const string DefaultRunDir = Hosting.RunDirectory.Default;

    public static string Socket(ConfigKey at, string socket) =>
        socket.StartsWith('/') && Encoding.UTF8.GetByteCount(socket) <= MaxSocketPathBytes
            ? socket
            : throw at.Error($"'{socket}' must be an absolute path of at most {MaxSocketPathBytes} bytes");

    public static string RunDir(ConfigKey at, string? runDir)
    {
        runDir ??= DefaultRunDir;
        return runDir.StartsWith('/') ? runDir : throw at.Error($"'{runDir}' must be an absolute path");
    }
}
