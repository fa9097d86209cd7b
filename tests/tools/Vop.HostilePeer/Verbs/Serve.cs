using System.CommandLine;
using Tmds.Linux;
using Vop.Links.Interop;
using Vop.Links.Ivshmem;

namespace Vop.HostilePeer.Verbs;

/// <summary>
/// serve: a hostile device side on a loopback link. Serves a memfd window with the project's own
/// ivshmem server (which admits any number of clients), lays it out per --layout and answers the
/// driver's handshake; with --truncate-after-ms it shrinks the memfd under the driver's mapping, which
/// works when neither we (--unsealed) nor the driver (--unsealable) sealed it.
/// </summary>
internal static class Serve
{
    private const long ShrunkSize = 4096;

    public static Command Create()
    {
        var socket = new Option<string>("--socket") { Description = "ivshmem-protocol socket to serve", Required = true };
        var windowSize = new Option<string>("--window-size") { Description = "window bytes (K/M/G suffix)", DefaultValueFactory = _ => "64M" };
        var vectors = new Option<int>("--vectors") { Description = "doorbell vectors per peer", DefaultValueFactory = _ => 16 };
        var unsealed = new Option<bool>("--unsealed") { Description = "do not seal the memfd (a driver may still seal it on receipt)" };
        var unsealable = new Option<bool>("--unsealable") { Description = "make the memfd without MFD_ALLOW_SEALING, so nobody can seal it" };
        var truncateAfter = new Option<int>("--truncate-after-ms") { Description = "shrink the memfd to 4096 bytes after this long (-1: never)", DefaultValueFactory = _ => -1 };
        var layout = new Option<string>("--layout") { Description = "normal, dup-vector, zero-vector, queue-over-header|state|table|buffers", DefaultValueFactory = _ => "normal" };
        var duration = new Option<int>("--duration-ms") { Description = "run this long (default: until SIGTERM/SIGINT)", DefaultValueFactory = _ => -1 };
        var command = new Command("serve", "hostile device side on a loopback (ivshmem-protocol) link") { socket, windowSize, vectors, unsealed, unsealable, truncateAfter, layout, duration };
        command.SetAction(p => Run(
            p.GetValue(socket)!, p.GetValue(windowSize)!, p.GetValue(vectors),
            p.GetValue(unsealable) ? MemfdSealing.Unsealable : p.GetValue(unsealed) ? MemfdSealing.Unsealed : MemfdSealing.Sealed,
            p.GetValue(truncateAfter), p.GetValue(layout)!, p.GetValue(duration)));
        return command;
    }

    private static int Run(string socketPath, string sizeText, int vectors, MemfdSealing sealing, int truncateAfterMs, string layoutText, int durationMs)
    {
        HostileLayout layout;
        ulong size;
        try
        {
            layout = HostileDevice.ParseLayout(layoutText);
            size = Report.ParseSize(sizeText);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            return Report.Fail("serve", e.Message);
        }

        HostileMemfd window;
        IvshmemServer server;
        try
        {
            window = HostileMemfd.Create(size, sealing);
        }
        catch (IOException e)
        {
            return Report.Fail("serve", e.Message);
        }

        try
        {
            server = new IvshmemServer(socketPath, window.Fd, vectors);
        }
        catch (ArgumentException e)
        {
            window.Dispose();
            return Report.Fail("serve", e.Message);
        }

        int clients = 0, departures = 0, connected = 0, maxConnected = 0, left = 0;
        server.PeerConnected += _ =>
        {
            Interlocked.Increment(ref clients);
            int now = Interlocked.Increment(ref connected);
            InterlockedMax(ref maxConnected, now);
        };
        server.PeerDisconnected += _ =>
        {
            Interlocked.Increment(ref departures);
            Interlocked.Decrement(ref connected);
            Interlocked.Exchange(ref left, 1);
        };

        using var cancel = new CancellationTokenSource();
        using IDisposable signals = Report.StopOnSignals(cancel, durationMs);

        var device = new HostileDevice(window.Accessor, layout);
        string truncated = "no";
        int shrunkByClient = 0;
        long truncateAt = truncateAfterMs >= 0 ? Environment.TickCount64 + truncateAfterMs : long.MaxValue;
        try
        {
            device.LayOut();
            server.Start();
            Report.Line("ready", 1);
            Report.Line("seals", Report.Seals(window.Fd.Fd));
            device.Serve(
                server.LocalPeer.Vectors[0],
                () => Interlocked.Exchange(ref left, 0) != 0,
                () =>
                {
                    if (device.WindowIntact && Report.FdSize(window.Fd.Fd) < (long)size)
                    {
                        // A client shrank our unsealed memfd (truncate-shm): touching the window now faults.
                        device.WindowIntact = false;
                        shrunkByClient = 1;
                    }

                    if (Environment.TickCount64 < truncateAt)
                    {
                        return;
                    }

                    truncateAt = long.MaxValue;
                    int r = LibC.ftruncate(window.Fd.Fd, ShrunkSize);
                    truncated = Report.Outcome(r, Errno.Last);
                    // Our own mapping past the first page is gone too: stop touching it.
                    device.WindowIntact = r != 0;
                },
                cancel.Token);
        }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidOperationException)
        {
            server.Dispose();
            window.Dispose();
            return Report.Fail("serve", e.Message);
        }

        device.Stop();
        server.Dispose();
        Report.Line("clients", clients);
        Report.Line("max_concurrent_clients", maxConnected);
        Report.Line("departures", departures);
        Report.Line("layouts", device.Layouts);
        Report.Line("driver_ok", device.DriverOks);
        Report.Line("resets", device.Resets);
        Report.Line("refusals", device.Refusals);
        Report.Line("truncated", truncated);
        Report.Line("shrunk_by_client", shrunkByClient);
        Report.Line("shm_size", Report.FdSize(window.Fd.Fd));
        Report.Line("seals_at_end", Report.Seals(window.Fd.Fd));
        window.Dispose();
        return 0;
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }
}
