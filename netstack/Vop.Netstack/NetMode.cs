namespace Vop.Netstack;

/// <summary>
/// What a net device's local interface is: a TAP (Ethernet frames, its own MAC, ARP by the kernel) or a
/// TUN (IP packets only, point to point). Each end of a link chooses for itself; the link carries Ethernet
/// frames either way (<see cref="Tun.TunFraming"/>).
/// </summary>
public enum NetMode
{
    Tap = 0,
    Tun = 1,
}

public static class NetModeNames
{
    /// <summary>The config and status spelling: "tap" or "tun".</summary>
    public static string Label(this NetMode mode) => mode == NetMode.Tun ? "tun" : "tap";
}
