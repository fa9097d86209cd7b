namespace Vop.Netstack.Virtio;

/// <summary>Buffer sizing for virtio-net without MRG_RXBUF.</summary>
public static class FrameSizes
{
    /// <summary>Largest GSO frame a TAP hands over: 64 KiB IP packet plus Ethernet and a VLAN tag.</summary>
    public const int MaxGsoFrame = 65535 + 14 + 4;

    /// <summary>Receive buffer for a driver: header plus a full GSO frame when TSO toward the driver was negotiated, else header plus MTU frame.</summary>
    public static uint BufferFor(int mtu, bool gsoTowardUs) =>
        (uint)(VirtioNetHeader.Size + (gsoTowardUs ? MaxGsoFrame : mtu + 14 + 4));
}
