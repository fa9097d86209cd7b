namespace Vop.Netstack;

/// <summary>A net device as configured: its TAP, the MAC handed to the driver side, the MTU.</summary>
public sealed record NetDeviceOptions(string Name, string Tap, byte[] Mac, int Mtu, ushort QueueSize = 256);
