using System.Buffers.Binary;
using System.Text;

namespace Vop.VirtioConsole;

/// <summary>virtio-console control messages (virtio 1.2 section 5.3.6.2): le32 id, le16 event, le16 value, then payload.</summary>
public static class ConsoleProtocol
{
    public const ulong FeatureSize = 1UL << 0;
    public const ulong FeatureMultiport = 1UL << 1;

    public const ushort DeviceReady = 0;
    public const ushort PortAdd = 1;
    public const ushort PortRemove = 2;
    public const ushort PortReady = 3;
    public const ushort ConsolePort = 4;
    public const ushort Resize = 5;
    public const ushort PortOpen = 6;
    public const ushort PortName = 7;

    /// <summary>vop private, driver → device: a window size for a port (virtio has RESIZE only device → driver).</summary>
    public const ushort VopResize = 0x8005;

    public const int HeaderSize = 8;
    public const int MaxNameBytes = 255;
    public const int ControlBufferSize = 512;
    public const int PortBufferSize = 4096;

    /// <summary>Queue index of port <paramref name="port"/>'s receive queue (device → driver); transmit is +1.</summary>
    public static int ReceiveQueue(int port) => port == 0 ? 0 : 2 + (2 * port);

    public const int ControlReceiveQueue = 2;  // c_ivq: device → driver
    public const int ControlTransmitQueue = 3; // c_ovq: driver → device

    public static int QueueCount(int ports) => 2 + (2 * ports);

    /// <summary>Config space (Linux UAPI order): le16 cols, le16 rows, le32 max_nr_ports, le32 emerg_wr.</summary>
    public static byte[] Config(int maxPorts, ushort cols = 80, ushort rows = 25)
    {
        var b = new byte[12];
        BinaryPrimitives.WriteUInt16LittleEndian(b, cols);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2), rows);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), (uint)maxPorts);
        return b;
    }

    public static int MaxPorts(ReadOnlySpan<byte> config) => config.Length >= 8 ? (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(config[4..]), 64) : 1;

    public static byte[] Encode(uint id, ushort ev, ushort value, ReadOnlySpan<byte> payload = default)
    {
        var b = new byte[HeaderSize + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(b, id);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(4), ev);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(6), value);
        payload.CopyTo(b.AsSpan(HeaderSize));
        return b;
    }

    public static byte[] EncodeName(uint id, string name) => Encode(id, PortName, 1, Encoding.UTF8.GetBytes(name));

    public static byte[] EncodeSize(uint id, ushort ev, ushort cols, ushort rows)
    {
        Span<byte> p = stackalloc byte[4];
        BinaryPrimitives.WriteUInt16LittleEndian(p, cols);
        BinaryPrimitives.WriteUInt16LittleEndian(p[2..], rows);
        return Encode(id, ev, 0, p);
    }

    /// <summary>A parsed control message, or why it was refused.</summary>
    public readonly record struct Message(uint Id, ushort Event, ushort Value, byte[] Payload);

    public static string? TryParse(ReadOnlySpan<byte> b, out Message message)
    {
        message = default;
        if (b.Length < HeaderSize)
        {
            return $"control message of {b.Length} bytes is shorter than its header";
        }

        if (b.Length > HeaderSize + MaxNameBytes)
        {
            return $"control message of {b.Length} bytes is oversize";
        }

        message = new Message(
            BinaryPrimitives.ReadUInt32LittleEndian(b),
            BinaryPrimitives.ReadUInt16LittleEndian(b[4..]),
            BinaryPrimitives.ReadUInt16LittleEndian(b[6..]),
            b[HeaderSize..].ToArray());
        return null;
    }
}
