using System.Globalization;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Vop.Appliance.Hosting;

namespace Vop.Appliance.Cli;

/// <summary>
/// `vop status [NAME] [-j]`: every running daemon of the run directory (found by its control socket, from
/// any network namespace), its links, devices, negotiated features and per-queue counters, with live rates
/// from two samples a second apart, in the style of `ip -s link` and `ethtool -S`. NAME keeps one daemon or
/// one link. --url reads one daemon's HTTP /status.json instead.
/// </summary>
public static class StatusCommand
{
    public static int Run(string runDir, string? name, string? url, bool json, double interval)
    {
        List<Func<StatusDocument>> daemons;
        using HttpClient? http = url is null ? null : new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        if (url is not null)
        {
            daemons = [() => Fetch(http!, url)];
        }
        else
        {
            IReadOnlyList<string> sockets = ControlClient.Sockets(runDir);
            if (sockets.Count == 0)
            {
                Console.Error.WriteLine($"vop status: no vop daemon is running under {runDir} (no {RunDirectory.ControlDirectory(runDir)}/*.sock; for a daemon with another runDir: --run-dir DIR)");
                return 1;
            }

            daemons = [.. sockets.Select(s => (Func<StatusDocument>)(() => Ask(s)))];
        }

        List<StatusDocument?> first;
        List<StatusDocument?> second;
        var problems = new List<string>();
        try
        {
            first = Sample(daemons, problems);
            Thread.Sleep(TimeSpan.FromSeconds(interval));
            second = Sample(daemons, null);
        }
        catch (Exception e) when (url is not null && e is HttpRequestException or TaskCanceledException or JsonException)
        {
            Console.Error.WriteLine($"vop status: cannot read {url}: {e.Message} (is the daemon running, with metrics.listen there?)");
            return 1;
        }

        List<StatusDocument> reached = [.. first.Zip(second).Where(p => p.First is not null && p.Second is not null).Select(p => WithRates(p.First!, p.Second!, interval))];
        if (reached.Count == 0)
        {
            Console.Error.WriteLine($"vop status: no vop daemon is running under {runDir} ({string.Join("; ", problems)})");
            return 1;
        }

        if (name is not null)
        {
            reached = [.. reached.Where(d => d.Daemon == name || d.Links.Any(l => l.Name == name))
                .Select(d => d.Daemon == name ? d : d with { Links = [.. d.Links.Where(l => l.Name == name)] })];
            if (reached.Count == 0)
            {
                Console.Error.WriteLine($"vop status: no running daemon is named '{name}' or has a link '{name}' (running: {string.Join(", ", first.OfType<StatusDocument>().Select(Describe))})");
                return 1;
            }
        }

        Console.Write(json ? JsonSerializer.Serialize(new StatusReport(reached), StatusReport.Json) + "\n" : Text(reached, problems));
        return 0;
    }

    private static List<StatusDocument?> Sample(List<Func<StatusDocument>> daemons, List<string>? problems)
    {
        var docs = new List<StatusDocument?>();
        foreach (Func<StatusDocument> read in daemons)
        {
            try
            {
                docs.Add(read());
            }
            catch (IOException e)
            {
                problems?.Add(e.Message);
                docs.Add(null);
            }
        }

        return docs;
    }

    /// <summary>One daemon's status through its control socket; an <see cref="IOException"/> says why not.</summary>
    private static StatusDocument Ask(string socket)
    {
        ControlClient.Answer answer = ControlClient.Request(socket, ControlProtocol.Status);
        if (answer.Socket is null)
        {
            throw new IOException(answer.Error);
        }

        using Socket s = answer.Socket;
        try
        {
            return JsonSerializer.Deserialize(ControlClient.ReadToEnd(s), StatusDocument.Json) ?? throw new IOException($"{socket}: empty status");
        }
        catch (Exception e) when (e is JsonException or SocketException)
        {
            throw new IOException($"{socket}: {e.Message}", e);
        }
    }

    private static StatusDocument Fetch(HttpClient http, string url) =>
        http.GetFromJsonAsync<StatusDocument>(url.TrimEnd('/') + "/status.json", StatusDocument.Json).GetAwaiter().GetResult()
        ?? throw new JsonException("empty status document");

    private static string Describe(StatusDocument d) => $"{d.Daemon ?? "?"} with {(d.Links.Count == 0 ? "no links" : string.Join(", ", d.Links.Select(l => l.Name)))}";

    private static StatusDocument WithRates(StatusDocument first, StatusDocument second, double interval) => second with
    {
        Links = [.. second.Links.Select(l => l with
        {
            Devices = [.. l.Devices.Select(d => d with
            {
                Queues = [.. d.Queues.Select(q =>
                {
                    StatusDocument.Queue? before = first.Links.FirstOrDefault(x => x.Name == l.Name)?.Devices.FirstOrDefault(x => x.Name == d.Name)?.Queues.FirstOrDefault(x => x.Name == q.Name);
                    return before is null ? q : q with
                    {
                        PacketsPerSecond = Math.Max(0, q.Packets - before.Packets) / interval,
                        BitsPerSecond = Math.Max(0, q.Bytes - before.Bytes) * 8 / interval,
                    };
                })],
            })],
        })],
    };

    private static string Text(List<StatusDocument> daemons, List<string> problems)
    {
        var b = new StringBuilder();
        CultureInfo c = CultureInfo.InvariantCulture;
        foreach (StatusDocument s in daemons)
        {
            if (s.Daemon is not null)
            {
                b.Append(c, $"daemon {s.Daemon} (pid {s.Pid}, config {s.Config})\n");
            }

            foreach (StatusDocument.Link l in s.Links)
            {
                string kind = l.Kind is null ? string.Empty : $" ({l.Kind})";
                string pumps = (l.Poll is null ? string.Empty : $", poll {l.Poll}") + (l.Cpus is null ? string.Empty : $", cpus {l.Cpus}");
                b.Append(c, $"  link {l.Name}{kind}: {l.Role} side, {(l.Up ? "UP" : "DOWN (peer gone or not negotiated)")}, resets {l.Resets}{pumps}\n");
                foreach (StatusDocument.Device d in l.Devices)
                {
                    b.Append(c, $"    device {d.Name} ({d.Type}{(d.Mode is null ? string.Empty : $", {d.Mode}")}): {(d.Live ? "live" : "down")}, status 0x{d.Status:x}, features {d.Features}\n");
                    if (d.Datapath is not null)
                    {
                        // The kernel moves this device's packets: vop has no queue counters, the TAP has its own.
                        b.Append(c, $"        datapath {d.Datapath}: queue counters: kernel (vop does not see the packets)\n");
                        if (d.Tap is StatusDocument.TapCounters t)
                        {
                            b.Append(c, $"        tap {t.Name}: rx {t.RxPackets} packets {t.RxBytes} bytes (dropped {t.RxDropped}), tx {t.TxPackets} packets {t.TxBytes} bytes (dropped {t.TxDropped})\n");
                        }

                        continue;
                    }

                    b.Append(c, $"        {"queue",-10} {"carries",-11} {"packets",12} {"bytes",15} {"pkt/s",10} {"bit/s",12} {"drops",7} {"errors",7}\n");
                    foreach (StatusDocument.Queue q in d.Queues)
                    {
                        b.Append(c, $"        {q.Name,-10} {Carries(q.Direction),-11} {q.Packets,12} {q.Bytes,15} {q.PacketsPerSecond ?? 0,10:F0} {Human(q.BitsPerSecond ?? 0),12} {q.Drops.Values.Sum(),7} {q.RingErrors.Values.Sum(),7}\n");
                    }
                }
            }
        }

        b.Append("carries: which way a queue's buffers go, the same on both ends (metrics: host->card is transmit, card->host receive); drops and errors by reason: -j\n");
        foreach (string p in problems)
        {
            b.Append(c, $"not reached: {p}\n");
        }

        return b.ToString();
    }

    /// <summary>The metrics' direction label (from the host's point of view) as the way the queue carries.</summary>
    private static string Carries(string direction) => direction == "transmit" ? "host->card" : "card->host";

    private static string Human(double bits) => bits switch
    {
        >= 1e9 => (bits / 1e9).ToString("F2", CultureInfo.InvariantCulture) + "G",
        >= 1e6 => (bits / 1e6).ToString("F2", CultureInfo.InvariantCulture) + "M",
        >= 1e3 => (bits / 1e3).ToString("F1", CultureInfo.InvariantCulture) + "k",
        _ => bits.ToString("F0", CultureInfo.InvariantCulture),
    };
}
