using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;

namespace Vop.Appliance.Cli;

/// <summary>The demo's built-in ping (ICMP echo through System.Net.NetworkInformation), for machines without iputils.</summary>
public static class Pinger
{
    public static int Run(string address, int count, TextWriter output)
    {
        using var ping = new Ping();
        var rtts = new List<double>();
        byte[] payload = new byte[56];
        for (int i = 0; i < count; i++)
        {
            long start = Stopwatch.GetTimestamp();
            PingReply reply = ping.Send(IPAddress.Parse(address), 2000, payload);
            double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (reply.Status == IPStatus.Success)
            {
                rtts.Add(ms);
            }

            if (i + 1 < count)
            {
                Thread.Sleep(200);
            }
        }

        int loss = (count - rtts.Count) * 100 / Math.Max(count, 1);
        output.WriteLine($"{count} packets transmitted, {rtts.Count} received, {loss}% packet loss");
        if (rtts.Count > 0)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"rtt min/avg/max = {rtts.Min():F3}/{rtts.Average():F3}/{rtts.Max():F3} ms"));
        }

        return rtts.Count == count ? 0 : 1;
    }
}
