using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Vop.Appliance.Demo;

/// <summary>
/// The demo's throughput figure when iperf3 is not installed: one TCP stream of 1 GiB from a source thread
/// in one namespace to a sink thread in the other (<see cref="NetnsThread"/>). The time runs from the first
/// send until the sink has read everything and closed, so it covers delivery, not just the send buffer.
/// </summary>
internal static class DemoStream
{
    public const string Method = "vop demo's built-in TCP stream, 1 GiB";
    private const long Bytes = 1L << 30;
    private const int Chunk = 1 << 20;
    private const int Port = 5201;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>Gbit/s from <paramref name="fromNs"/> to <paramref name="to"/> in <paramref name="toNs"/>; 0 and a line on stderr when it failed.</summary>
    public static double Run(string fromNs, string toNs, IPAddress to)
    {
        var endpoint = new IPEndPoint(to, Port);
        using var listening = new ManualResetEventSlim();
        Task<long> sink = NetnsThread.Start(toNs, "vop-demo-sink", () => Sink(endpoint, listening));
        if (WaitHandle.WaitAny([listening.WaitHandle, ((IAsyncResult)sink).AsyncWaitHandle], TimeSpan.FromSeconds(10)) != 0)
        {
            return Failed(sink, null, "did not start: the sink is not listening");
        }

        Task<double> source = NetnsThread.Start(fromNs, "vop-demo-source", () => Source(endpoint));
        try
        {
            if (!Task.WhenAll(sink, source).Wait(Timeout))
            {
                return Failed(sink, source, $"not done after {Timeout.TotalSeconds:F0} s");
            }
        }
        catch (AggregateException)
        {
            return Failed(sink, source, "failed");
        }

        return sink.Result == Bytes ? source.Result : Failed(sink, source, $"lost data: the sink read {sink.Result} of {Bytes} bytes");
    }

    private static long Sink(IPEndPoint endpoint, ManualResetEventSlim listening)
    {
        using var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Bind(endpoint);
        listener.Listen(1);
        listening.Set();
        if (!listener.Poll((int)Timeout.TotalMicroseconds, SelectMode.SelectRead))
        {
            throw new TimeoutException("no connection");
        }

        using Socket s = listener.Accept();
        s.ReceiveTimeout = (int)Timeout.TotalMilliseconds;
        var buffer = new byte[Chunk];
        long total = 0;
        int n;
        while ((n = s.Receive(buffer)) > 0)
        {
            total += n;
        }

        return total;
    }

    private static double Source(IPEndPoint endpoint)
    {
        using var s = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        s.SendTimeout = s.ReceiveTimeout = (int)Timeout.TotalMilliseconds;
        s.Connect(endpoint);
        var data = new byte[Chunk];
        new Random(1).NextBytes(data);
        long start = Stopwatch.GetTimestamp();
        for (long sent = 0; sent < Bytes;)
        {
            sent += s.Send(data, 0, (int)Math.Min(Chunk, Bytes - sent), SocketFlags.None);
        }

        s.Shutdown(SocketShutdown.Send);
        // The sink closes once it has read everything: the end of delivery.
        while (s.Receive(data) > 0)
        {
        }

        return Bytes * 8 / Stopwatch.GetElapsedTime(start).TotalSeconds / 1e9;
    }

    private static double Failed(Task<long> sink, Task<double>? source, string what)
    {
        string why = string.Join("; ", new Task?[] { sink, source }.OfType<Task>().Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!.Message));
        Console.Error.WriteLine($"vop demo: TCP stream {what}{(why.Length > 0 ? ": " + why : string.Empty)}");
        return 0;
    }
}
