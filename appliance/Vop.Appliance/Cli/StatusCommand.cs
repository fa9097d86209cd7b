using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Vop.Appliance.Hosting;

namespace Vop.Appliance.Cli;

/// <summary>
/// `vop status [-j]`: links, devices, negotiated features and per-queue counters of the running daemon, with
/// live rates from two samples a second apart, in the style of `ip -s link` and `ethtool -S`.
/// </summary>
public static class StatusCommand
{
    public static int Run(string url, bool json, double interval)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        StatusDocument first;
        StatusDocument second;
        try
        {
            first = Fetch(http, url);
            Thread.Sleep(TimeSpan.FromSeconds(interval));
            second = Fetch(http, url);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
        {
            Console.Error.WriteLine($"vop status: cannot read {url}: {e.Message} (is the daemon running, with metrics.listen there?)");
            return 1;
        }

        StatusDocument withRates = second with
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

        Console.Write(json ? JsonSerializer.Serialize(withRates, StatusDocument.Json) + "\n" : Text(withRates));
        return 0;
    }

    private static StatusDocument Fetch(HttpClient http, string url) =>
        http.GetFromJsonAsync<StatusDocument>(url.TrimEnd('/') + "/status.json", StatusDocument.Json).GetAwaiter().GetResult()
        ?? throw new JsonException("empty status document");

    private static string Text(StatusDocument s)
    {
        var b = new StringBuilder();
        CultureInfo c = CultureInfo.InvariantCulture;
        foreach (StatusDocument.Link l in s.Links)
        {
            string kind = l.Kind is null ? string.Empty : $" ({l.Kind})";
            b.Append(c, $"link {l.Name}{kind}: {l.Role} side, {(l.Up ? "UP" : "DOWN (peer gone or not negotiated)")}, resets {l.Resets}\n");
            foreach (StatusDocument.Device d in l.Devices)
            {
                b.Append(c, $"    device {d.Name} ({d.Type}): {(d.Live ? "live" : "down")}, status 0x{d.Status:x}, features {d.Features}\n");
                b.Append(c, $"        {"queue",-10} {"dir",-8} {"packets",12} {"bytes",15} {"pkt/s",10} {"bit/s",12} {"drops",7} {"errors",7}\n");
                foreach (StatusDocument.Queue q in d.Queues)
                {
                    b.Append(c, $"        {q.Name,-10} {(q.Direction == "receive" ? "rx" : "tx"),-8} {q.Packets,12} {q.Bytes,15} {q.PacketsPerSecond ?? 0,10:F0} {Human(q.BitsPerSecond ?? 0),12} {q.Drops.Values.Sum(),7} {q.RingErrors.Values.Sum(),7}\n");
                }
            }
        }

        return b.ToString();
    }

    private static string Human(double bits) => bits switch
    {
        >= 1e9 => (bits / 1e9).ToString("F2", CultureInfo.InvariantCulture) + "G",
        >= 1e6 => (bits / 1e6).ToString("F2", CultureInfo.InvariantCulture) + "M",
        >= 1e3 => (bits / 1e3).ToString("F1", CultureInfo.InvariantCulture) + "k",
        _ => bits.ToString("F0", CultureInfo.InvariantCulture),
    };
}
