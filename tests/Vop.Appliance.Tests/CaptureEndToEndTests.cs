using System.Diagnostics;
using System.Security.Cryptography;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>`vop capture` during a ping and a TCP transfer: tshark reads the file and finds exactly what crossed.</summary>
[Collection(EndToEnd.Name)]
public sealed class CaptureEndToEndTests
{
    [Fact]
    public void CaptureHoldsThePingsAndTheTransferByteForByte()
    {
        using var pair = new LinkPair();
        pair.Up();
        string file = Path.Combine(pair.Dir, "link.pcap");
        Process capture = Process.Start(Run.Info(pair.HostNs, Run.Vop("capture", "card0", "--run-dir", pair.RunDir, "-w", file)))!;
        try
        {
            Thread.Sleep(1500);
            (int pc, string po, _) = pair.Ping(pair.HostNs, pair.CardIp, count: 5);
            Assert.True(pc == 0, po);
            const long Bytes = 1 << 20;
            (string src, string dst, long got) = pair.Transfer(pair.HostNs, pair.CardNs, pair.CardIp, Bytes, seed: 21);
            Assert.Equal(src, dst);
            Thread.Sleep(1000);
        }
        finally
        {
            _ = Tmds.Linux.LibC.kill(capture.Id, 2); // Ctrl-C
            Assert.True(capture.WaitForExit(15_000), "vop capture did not stop on SIGINT");
        }

        string err = capture.StandardError.ReadToEnd();
        Assert.Contains("frames written", err);

        (int code, string icmp, string e) = Run.In(null, "tshark", "-r", file, "-Y", "icmp.type == 8 || icmp.type == 0", "-T", "fields", "-e", "icmp.type");
        Assert.True(code == 0, e);
        string[] types = icmp.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5, types.Count(t => t.Trim() == "8"));
        Assert.Equal(5, types.Count(t => t.Trim() == "0"));

        // The TCP stream, reassembled by tshark from the captured frames, is the bytes the source sent. It is
        // the stream that carries payload: the source retries its connect until the sink listens, and a
        // refused SYN is a stream of its own.
        (code, string streams, e) = Run.In(null, "tshark", "-r", file, "-Y", "tcp.len > 0", "-T", "fields", "-e", "tcp.stream");
        Assert.True(code == 0, e);
        string stream0 = streams.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim()).FirstOrDefault() ?? "0";
        (code, string follow, e) = Run.In(null, TimeSpan.FromSeconds(60), "tshark", "-r", file, "-q", "-z", $"follow,tcp,raw,{stream0}");
        Assert.True(code == 0, e);
        var stream = new MemoryStream();
        foreach (string line in follow.Split('\n'))
        {
            if (line.Length > 0 && !line.StartsWith('\t') && line.All(Uri.IsHexDigit) && line.Length % 2 == 0)
            {
                stream.Write(Convert.FromHexString(line));
            }
        }

        Assert.Equal(1L << 20, stream.Length);
        byte[] expected = SourceBytes(1 << 20, 21);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(expected)), Convert.ToHexStringLower(SHA256.HashData(stream.ToArray())));
    }

    /// <summary>What `Vop.NetProbe tcp-source --seed` sends: 1 MiB chunks of seeded random bytes, chunk number first.</summary>
    private static byte[] SourceBytes(int bytes, int seed)
    {
        var chunk = new byte[1 << 20];
        new Random(seed).NextBytes(chunk);
        var all = new byte[bytes];
        for (int off = 0, n = 0; off < bytes; off += chunk.Length, n++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(chunk, n);
            chunk.AsSpan(0, Math.Min(chunk.Length, bytes - off)).CopyTo(all.AsSpan(off));
        }

        return all;
    }
}
