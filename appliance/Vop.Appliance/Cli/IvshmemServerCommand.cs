using System.Globalization;
using Microsoft.Extensions.Logging;
using Vop.Links.Ivshmem;
using Vop.Links.Windows;

namespace Vop.Appliance.Cli;

/// <summary>
/// `vop ivshmem-server`: what QEMU's contrib/ivshmem-server does (-S socket, -l size, -n vectors), for two
/// (or more) QEMU guests whose ivshmem-doorbell devices share one window and ring each other, with no vop
/// data path on the host: vop runs inside the guests (`pci` kind, `doorbell: ivshmem`), one of them the
/// device side. The shared memory is a sealed memfd (no guest can shrink it under the other); every client
/// gets it, its own id and eventfds, and every other peer's eventfds; joins and leaves are announced.
/// Runs in the foreground until SIGTERM or SIGINT, then removes its socket and exits 0.
/// </summary>
public static class IvshmemServerCommand
{
    public const string DefaultSocket = "/run/vop/ivshmem.sock";
    public const string DefaultSize = "4M";
    public const int DefaultVectors = 16;
    public const int DefaultMaxPeers = 16;
    public const int MaxPeersLimit = 1024;

    public static int Run(string socket, string size, int vectors, int maxPeers)
    {
        if (ParseSize(size) is not ulong bytes)
        {
            return Refuse($"--size '{size}' must be a power of two from 1M to 1G, with K, M or G (e.g. 64M): an ivshmem BAR is a power of two");
        }

        if (vectors is < 1 or > IvshmemProtocol.MaxVectors)
        {
            return Refuse($"--vectors {vectors} must be 1..{IvshmemProtocol.MaxVectors} (a vop link needs its own vectors count, default 16)");
        }

        if (maxPeers is < 1 or > MaxPeersLimit)
        {
            return Refuse($"--max-peers {maxPeers} must be 1..{MaxPeersLimit}");
        }

        if (!socket.StartsWith('/'))
        {
            socket = Path.GetFullPath(socket);
        }

        using ILoggerFactory logs = LoggerFactory.Create(b =>
        {
            b.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            });
            b.SetMinimumLevel(LogLevel.Information);
        });
        ILogger log = logs.CreateLogger("vop.ivshmem-server");
        using var stop = new StopSignals();

        using SharedWindow? memory = CreateMemory(bytes, out string? error);
        if (memory is null)
        {
            return Refuse(error!);
        }

        using var server = new IvshmemServer(socket, memory.Fd!, vectors, log, maxPeers, localPeer: false);
        try
        {
            server.Start();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Refuse($"cannot serve {socket}: {e.Message}");
        }

        log.LogInformation("serving {Socket}: {Size} of shared memory (sealed memfd), {Vectors} vectors, up to {MaxPeers} peers", socket, size, vectors, maxPeers);
        stop.Wait();
        log.LogInformation("stopping: {Peers} peer(s) connected, {Refused} refused", server.Peers.Count, server.RefusedPeers);

        // Returning disposes the server (closes every client: QEMU sees the server gone; removes the socket), then the memory.
        return 0;
    }

    private static SharedWindow? CreateMemory(ulong bytes, out string? error)
    {
        error = null;
        try
        {
            return SharedWindow.CreateMemfd("vop-ivshmem", bytes);
        }
        catch (IOException e)
        {
            error = e.Message;
            return null;
        }
    }

    /// <summary>N, NK, NM or NG (binary units), a power of two from 1M to 1G; null otherwise.</summary>
    public static ulong? ParseSize(string text)
    {
        text = text.Trim();
        if (text.Length == 0)
        {
            return null;
        }

        int shift = char.ToUpperInvariant(text[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, _ => 0 };
        string digits = shift == 0 ? text : text[..^1];
        if (!ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) || n == 0 || n > (1UL << 30))
        {
            return null;
        }

        ulong bytes = n << shift;
        return bytes is >= 1UL << 20 and <= 1UL << 30 && (bytes & (bytes - 1)) == 0 && bytes >> shift == n ? bytes : null;
    }

    private static int Refuse(string what)
    {
        Console.Error.WriteLine($"vop ivshmem-server: {what}");
        return 1;
    }
}
