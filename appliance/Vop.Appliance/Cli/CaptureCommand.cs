using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using PacketDotNet;
using SharpPcap;
using SharpPcap.LibPcap;

namespace Vop.Appliance.Cli;

/// <summary>
/// `vop capture LINK [--queue Q] -w FILE`: writes the frames crossing the link's net devices, both
/// directions, to a pcap file (Ethernet) that tshark and Wireshark read. The virtio-net header of each
/// frame is stripped from the pcap and summarised on stderr with --verbose. Stops on Ctrl-C, --count or
/// --duration.
/// </summary>
public static class CaptureCommand
{
    private const int Header = 14; // CaptureRing record header
    private const int VnetHeader = 12;

    public static int Run(string runDir, string link, string file, string? queue, long count, double duration, bool verbose)
    {
        if (!LibpcapLoads())
        {
            Console.Error.WriteLine("vop capture: libpcap is not installed (writing pcap files needs it): apt install libpcap0.8 on Debian/Ubuntu, dnf install libpcap on Fedora/RHEL");
            return 1;
        }

        using Socket? socket = Open(runDir, link);
        if (socket is null)
        {
            return 1;
        }

        using var stop = new StopSignals();
        if (duration > 0)
        {
            stop.CancelAfter(TimeSpan.FromSeconds(duration));
        }

        using var writer = new CaptureFileWriterDevice(file, FileMode.Create);
        try
        {
            writer.Open(new DeviceConfiguration { LinkLayerType = LinkLayers.Ethernet, Snaplen = 262144 });
        }
        catch (PcapException e)
        {
            Console.Error.WriteLine($"vop capture: cannot write {file}: {e.Message}");
            return 1;
        }

        var pending = new List<byte>();
        var buffer = new byte[1 << 20];
        long frames = 0;
        socket.ReceiveTimeout = 200;
        while (!stop.IsSet && (count <= 0 || frames < count))
        {
            int n;
            try
            {
                n = socket.Receive(buffer);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
            {
                continue;
            }

            if (n == 0)
            {
                break; // the daemon stopped
            }

            pending.AddRange(buffer.AsSpan(0, n));
            frames += Records(pending, writer, queue, verbose, count - frames);
        }

        writer.Close();
        Console.Error.WriteLine($"vop capture: {frames} frames written to {file}");
        return 0;
    }

    /// <summary>
    /// Asks each daemon of the run directory for the link's frames; the one that has the link answers ok and
    /// streams. Null after one line saying why nobody did.
    /// </summary>
    private static Socket? Open(string runDir, string link)
    {
        IReadOnlyList<string> sockets = ControlClient.Sockets(runDir);
        var serving = new List<string>();
        foreach (string path in sockets)
        {
            ControlClient.Answer answer = ControlClient.Request(path, $"{Hosting.ControlProtocol.Capture} {link}");
            if (answer.Socket is not null)
            {
                answer.Socket.ReceiveTimeout = 0;
                return answer.Socket;
            }

            if (answer.Stale)
            {
                continue;
            }

            if (answer.Error?.StartsWith("no link ", StringComparison.Ordinal) != true)
            {
                Console.Error.WriteLine($"vop capture: daemon {ControlClient.DaemonOf(path)}: {answer.Error}");
                return null;
            }

            serving.Add(ControlClient.DaemonOf(path));
        }

        Console.Error.WriteLine(serving.Count == 0
            ? $"vop capture: no daemon serves link '{link}' (no vop daemon is running under {runDir}; is vop running, and with --run-dir?)"
            : $"vop capture: no daemon serves link '{link}' (the daemons under {runDir}, {string.Join(", ", serving)}, do not have it; `vop status --run-dir {runDir}` lists their links)");
        return null;
    }

    /// <summary>
    /// Whether libpcap loads (SharpPcap's pcap writer calls it), probed before anything is connected or
    /// created. The names are the ones SharpPcap's resolver tries on Linux for its "wpcap" imports.
    /// </summary>
    private static bool LibpcapLoads()
    {
        foreach (string name in (string[])["libpcap.so", "libpcap.so.1", "libpcap.so.0.8", "libpcap.so.0"])
        {
            if (NativeLibrary.TryLoad(name, out IntPtr handle))
            {
                NativeLibrary.Free(handle);
                return true;
            }
        }

        return false;
    }

    /// <summary>Writes every complete record at the front of the stream; returns frames written.</summary>
    private static long Records(List<byte> pending, CaptureFileWriterDevice writer, string? queue, bool verbose, long budget)
    {
        long written = 0;
        byte[] data = [.. pending];
        int at = 0;
        while (data.Length - at >= Header)
        {
            int length = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(at));
            if (data.Length - at < Header + length)
            {
                break;
            }

            byte direction = data[at + 4];
            long nanos = BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(at + 6));
            ReadOnlySpan<byte> record = data.AsSpan(at + Header, length);
            string name = direction == 0 ? "rx0" : "tx0";
            if ((queue is null || queue == name) && length > VnetHeader && (budget <= 0 || written < budget))
            {
                DateTime when = DateTime.UnixEpoch.AddTicks(nanos / 100);
                writer.Write(new RawCapture(LinkLayers.Ethernet, new PosixTimeval(when), record[VnetHeader..].ToArray()));
                if (verbose)
                {
                    Console.Error.WriteLine($"{when:HH:mm:ss.ffffff} dev {data[at + 5]} {name} len {length - VnetHeader} vnet flags {record[0]} gso_type {record[1]} hdr_len {BinaryPrimitives.ReadUInt16LittleEndian(record[2..])} gso_size {BinaryPrimitives.ReadUInt16LittleEndian(record[4..])} csum {BinaryPrimitives.ReadUInt16LittleEndian(record[6..])}+{BinaryPrimitives.ReadUInt16LittleEndian(record[8..])}");
                }

                written++;
            }

            at += Header + length;
        }

        pending.RemoveRange(0, at);
        return written;
    }
}
