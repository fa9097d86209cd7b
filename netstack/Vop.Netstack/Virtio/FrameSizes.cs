using Vop.Links.Transport;

namespace Vop.Netstack.Virtio;

/// <summary>Frame and buffer sizing for virtio-net: header plus the largest frame that may cross.</summary>
public static class FrameSizes
{
    /// <summary>Largest GSO frame a TAP hands over: 64 KiB IP packet plus Ethernet and a VLAN tag.</summary>
    public const int MaxGsoFrame = 65535 + 14 + 4;

    /// <summary>Header plus a full GSO frame: the largest buffer either side uses, whatever the MTU.</summary>
    public const uint MaxBuffer = VirtioNetHeader.Size + MaxGsoFrame;

    /// <summary>
    /// Window bytes one driver-side buffer takes at most: <see cref="MaxBuffer"/> at the carver's stride. The
    /// config's window-size rule counts queues of these, so what it admits is what the driver side carves.
    /// </summary>
    public static ulong MaxCarvedBuffer => BufferCarver.Stride(MaxBuffer);

    /// <summary>
    /// Header plus a full GSO frame when TSO in that direction was negotiated, else header plus an MTU
    /// frame: a driver's buffer size without MRG_RXBUF, the most a device accepts from a driver, the room a
    /// device holds in mergeable buffers before reading the TAP.
    /// </summary>
    public static uint BufferFor(int mtu, bool gsoTowardUs) =>
        gsoTowardUs ? MaxBuffer : (uint)(VirtioNetHeader.Size + mtu + 14 + 4);
}
