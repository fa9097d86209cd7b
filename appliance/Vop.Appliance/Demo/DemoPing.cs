using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Vop.Appliance.Demo;

/// <summary>
/// The demo's ping: ICMP echo over a raw socket (the demo runs as root; an ICMP datagram socket would need
/// net.ipv4.ping_group_range, which a fresh namespace leaves closed). A few warm-up echoes first (ARP, cold
/// caches, pump threads asleep), then the measured ones 10 ms apart; the figure is their median round trip.
/// Like iputils ping, a reply's arrival is the kernel's receive timestamp of it (SIOCGSTAMPNS), not the
/// moment this thread woke up to read it: the round trip is the link's, without this process's scheduling
/// latency (on a busy 2-core machine that alone adds 0.1 to several ms). Runs on the calling thread, so
/// inside whatever network namespace that thread has joined.
/// </summary>
internal static unsafe class DemoPing
{
    public const int WarmUp = 5;
    public const int Count = 20;
    public const string Method = "raw ICMP echo, kernel receive timestamps as ping(8), median of 20 after 5 warm-up";
    private const int SiocGStampNs = 0x8907;
    private const int PayloadBytes = 56;
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(1);

    /// <summary>What the measured echoes did.</summary>
    /// <summary>What the measured echoes did; <paramref name="UserMedianMs"/> is the same median measured in this process (send to wake-up after the reply).</summary>
    public readonly record struct Result(int Sent, int Received, double MedianMs, double UserMedianMs = 0)
    {
        public int LossPercent => (Sent - Received) * 100 / Math.Max(Sent, 1);

        public bool AllAnswered => Sent > 0 && Received == Sent;
    }

    public static Result Run(IPAddress to, int warmUp = WarmUp, int count = Count)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Raw, ProtocolType.Icmp);
        ushort id = (ushort)(Environment.ProcessId ^ Environment.CurrentManagedThreadId);
        var rtts = new List<double>();
        var userRtts = new List<double>();
        byte[] request = new byte[8 + PayloadBytes];
        byte[] reply = new byte[1500];
        for (int i = 0; i < warmUp + count; i++)
        {
            ushort seq = (ushort)(i + 1);
            Encode(request, id, seq);
            long start = Stopwatch.GetTimestamp();
            long sentNs = RealtimeNs();
            socket.SendTo(request, new IPEndPoint(to, 0));
            if (AwaitReply(socket, reply, to, id, seq, start) && i >= warmUp)
            {
                double user = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                long arrivedNs = KernelStampNs(socket);
                userRtts.Add(user);
                rtts.Add(arrivedNs > sentNs && (arrivedNs - sentNs) / 1e6 <= user ? (arrivedNs - sentNs) / 1e6 : user);
            }

            Thread.Sleep(10);
        }

        return new Result(count, rtts.Count, Median(rtts), Median(userRtts));
    }

    /// <summary>CLOCK_REALTIME (what the kernel stamps packets with), to 100 ns.</summary>
    private static long RealtimeNs() => (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;

    /// <summary>The kernel's CLOCK_REALTIME receive time of the last packet this socket read (SIOCGSTAMPNS), or 0.</summary>
    private static long KernelStampNs(Socket socket)
    {
        Tmds.Linux.timespec t;
        return Tmds.Linux.LibC.ioctl((int)socket.SafeHandle.DangerousGetHandle(), SiocGStampNs, (void*)&t) == 0 ? (t.tv_sec * 1_000_000_000L) + t.tv_nsec : 0;
    }

    /// <summary>Echo request: type 8, code 0, checksum, identifier, sequence, payload.</summary>
    private static void Encode(byte[] packet, ushort id, ushort seq)
    {
        packet.AsSpan().Clear();
        packet[0] = 8;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(6), seq);
        for (int i = 8; i < packet.Length; i++)
        {
            packet[i] = (byte)i;
        }

        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), Checksum(packet));
    }

    /// <summary>Waits for the echo reply from <paramref name="from"/> with our identifier and sequence; a raw socket sees every ICMP packet of the namespace.</summary>
    private static bool AwaitReply(Socket socket, byte[] buffer, IPAddress from, ushort id, ushort seq, long start)
    {
        while (Stopwatch.GetElapsedTime(start) < ReplyTimeout)
        {
            int waitUs = (int)Math.Max(1, (ReplyTimeout - Stopwatch.GetElapsedTime(start)).TotalMicroseconds);
            if (!socket.Poll(waitUs, SelectMode.SelectRead))
            {
                return false;
            }

            EndPoint sender = new IPEndPoint(IPAddress.Any, 0);
            int n = socket.ReceiveFrom(buffer, ref sender);
            int ihl = (buffer[0] & 0x0F) * 4; // an IPv4 raw socket hands over the IP header too
            if (n >= ihl + 8 && ((IPEndPoint)sender).Address.Equals(from) && buffer[ihl] == 0
                && BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(ihl + 4)) == id
                && BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(ihl + 6)) == seq)
            {
                return true;
            }
        }

        return false;
    }

    private static ushort Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (int i = 0; i + 1 < data.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        }

        if ((data.Length & 1) != 0)
        {
            sum += (uint)data[^1] << 8;
        }

        while (sum >> 16 != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (ushort)~sum;
    }

    private static double Median(List<double> values)
    {
        if (values.Count == 0)
        {
            return 0;
        }

        values.Sort();
        int mid = values.Count / 2;
        return values.Count % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
    }
}
