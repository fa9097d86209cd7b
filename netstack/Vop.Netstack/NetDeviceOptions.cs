namespace Vop.Netstack;

/// <summary>
/// What the device side of a net device runs with: its TAP, the MAC and MTU it writes into the config space
/// (<see cref="Virtio.NetConfigSpace"/>), the size of its two queues. The appliance's validated config holds
/// exactly this per net device; on a driver-role link only the name and TAP are the config's.
/// </summary>
public sealed record NetDeviceOptions(string Name, string Tap, byte[] Mac, int Mtu, ushort QueueSize = 256);
