namespace Vop.Netstack;

/// <summary>What moves a device-side net device's packets between its TAP and the window.</summary>
public enum NetDatapath
{
    /// <summary>vop's own pump thread per queue pair (<see cref="Device.NetDevicePump"/>): counters, capture, every link kind.</summary>
    Pump = 0,

    /// <summary>
    /// The kernel's vhost-net (/dev/vhost-net) reads and writes the rings in the window and the TAP itself;
    /// vop only sets it up and tears it down (<see cref="VhostNet.VhostNetDevice"/>). No queue counters, no capture.
    /// </summary>
    VhostNet = 1,
}
