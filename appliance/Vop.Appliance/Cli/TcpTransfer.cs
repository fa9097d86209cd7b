using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Vop.Appliance.Cli;

/// <summary>
/// The demo's and tests' built-in TCP transfer (for machines without iperf3): a source sends N bytes of
/// seeded pseudo-random data, a sink receives them; both print byte count, SHA-256 and Gbit/s.
/// </summary>
public static class TcpTransfer
{
    private const int Chunk = 1 << 20;

    public static int Sink(int port, TextWriter output)
    {
        using var listener = new TcpListener(IPAddress.Any, port);
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Start(1);
        output.WriteLine($"listening={port}");
        output.Flush();
        using Socket s = listener.AcceptSocket();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[Chunk];
        long total = 0;
        long start = 0;
        while (true)
        {
            int n = s.Receive(buf);
            if (n == 0)
            {
                break;
            }

            if (start == 0)
            {
                start = Stopwatch.GetTimestamp();
            }

            hash.AppendData(buf, 0, n);
            total += n;
        }

        Report(output, total, hash, start);
        return 0;
    }

    public static int Source(string endpoint, long bytes, int seed, TextWriter output)
    {
        IPEndPoint ep = IPEndPoint.Parse(endpoint);
        using var s = new Socket(ep.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        long deadline = Environment.TickCount64 + 10_000;
        while (true)
        {
            try
            {
                s.Connect(ep);
                break;
            }
            catch (SocketException) when (Environment.TickCount64 < deadline)
            {
                Thread.Sleep(100);
            }
        }

        var data = new byte[Chunk];
        new Random(seed).NextBytes(data);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long sent = 0;
        long start = Stopwatch.GetTimestamp();
        for (long chunk = 0; sent < bytes; chunk++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(data, chunk);
            int n = (int)Math.Min(Chunk, bytes - sent);
            hash.AppendData(data, 0, n);
            int off = 0;
            while (off < n)
            {
                off += s.Send(data, off, n - off, SocketFlags.None);
            }

            sent += n;
        }

        s.Shutdown(SocketShutdown.Send);
        // Wait for the sink to close, so the time covers delivery, not just the send buffer.
        var tail = new byte[16];
        while (s.Receive(tail) > 0)
        {
        }

        Report(output, sent, hash, start);
        return 0;
    }

    private static void Report(TextWriter output, long total, IncrementalHash hash, long start)
    {
        double seconds = start == 0 ? 0 : Stopwatch.GetElapsedTime(start).TotalSeconds;
        output.WriteLine($"bytes={total}");
        output.WriteLine($"sha256={Convert.ToHexStringLower(hash.GetHashAndReset())}");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"gbps={(seconds > 0 ? total * 8 / seconds / 1e9 : 0):F3}"));
    }
}
