namespace Vop.Netstack.Driver;

/// <summary>
/// A driver-side net device: which TAP it binds to and how many queue pairs it will use at most (the
/// device offers its own maximum), and whether that interface is a TAP or a TUN. MAC and MTU come from the
/// device's config space (in TUN mode the MAC is the one this end uses on the link).
/// </summary>
public sealed record NetDriverOptions(string Name, string Tap, int FallbackMtu = 1500, int QueuePairs = 1, NetMode Mode = NetMode.Tap);
