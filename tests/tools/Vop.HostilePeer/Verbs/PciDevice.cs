using System.CommandLine;
using Vop.Links.Pci;
using Vop.Links.Windows;

namespace Vop.HostilePeer.Verbs;

/// <summary>
/// pci-device: the hostile device side of serve on a pci window file (a /dev/shm file standing in for a
/// BAR): doorbells are the counters in the window and presence is the driver's heartbeat, through the
/// project's own PciLinkEnd.
/// </summary>
internal static class PciDevice
{
    public static Command Create()
    {
        var file = new Option<string>("--file") { Description = "window file (created and sized when missing, removed at exit if created)", Required = true };
        var windowSize = new Option<string>("--window-size") { Description = "window bytes (K/M/G suffix)", DefaultValueFactory = _ => "64M" };
        var vectors = new Option<int>("--vectors") { Description = "doorbell vectors", DefaultValueFactory = _ => 16 };
        var layout = new Option<string>("--layout") { Description = "normal, dup-vector, zero-vector, queue-over-header|state|table|buffers", DefaultValueFactory = _ => "normal" };
        var duration = new Option<int>("--duration-ms") { Description = "run this long (default: until SIGTERM/SIGINT)", DefaultValueFactory = _ => -1 };
        var command = new Command("pci-device", "hostile device side on a pci window file (polled doorbells)") { file, windowSize, vectors, layout, duration };
        command.SetAction(p => Run(p.GetValue(file)!, p.GetValue(windowSize)!, p.GetValue(vectors), p.GetValue(layout)!, p.GetValue(duration)));
        return command;
    }

    private static int Run(string path, string sizeText, int vectors, string layoutText, int durationMs)
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
            return Report.Fail("pci-device", e.Message);
        }

        bool created = !File.Exists(path);
        PciLinkEnd end;
        try
        {
            end = new PciLinkEnd(SharedWindow.OpenFile(path, 0, size, create: true), deviceSide: true, vectors);
        }
        catch (Exception e) when (e is IOException or ArgumentException)
        {
            return Report.Fail("pci-device", e.Message);
        }

        using var cancel = new CancellationTokenSource();
        using IDisposable signals = Report.StopOnSignals(cancel, durationMs);
        var device = new HostileDevice(end.Window.Accessor, layout);
        int arrivals = 0, departures = 0;
        bool attached = false;
        try
        {
            device.LayOut();
            Report.Line("ready", 1);
            device.Serve(
                end.LocalDoorbell(0),
                () =>
                {
                    // Presence is the driver's heartbeat; a departure gets a fresh layout, as vop's device side does.
                    bool now = end.PeerAttached;
                    bool left = attached && !now;
                    arrivals += !attached && now ? 1 : 0;
                    departures += left ? 1 : 0;
                    attached = now;
                    return left;
                },
                () => { },
                cancel.Token);
            device.Stop();
        }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidOperationException)
        {
            return Report.Fail("pci-device", e.Message);
        }
        finally
        {
            end.Dispose();
            if (created)
            {
                File.Delete(path);
            }
        }

        Report.Line("created", created ? 1 : 0);
        Report.Line("driver_arrivals", arrivals);
        Report.Line("departures", departures);
        Report.Line("layouts", device.Layouts);
        Report.Line("driver_ok", device.DriverOks);
        Report.Line("resets", device.Resets);
        Report.Line("refusals", device.Refusals);
        return 0;
    }
}
