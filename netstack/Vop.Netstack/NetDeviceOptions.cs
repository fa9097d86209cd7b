namespace Vop.Netstack;

/// <summary>
/// What the device side of a net device runs with: its TAP, the MAC and MTU it writes into the config space
/// (<see cref="Virtio.NetConfigSpace"/>), the size of its queues and how many receive/transmit pairs it
/// offers (more than one: VIRTIO_NET_F_MQ, a control queue, a multiqueue TAP). The appliance's validated
/// config holds exactly this per net device; on a driver-role link only the name, TAP, pairs and mode are the config's.
/// <see cref="Mode"/>: the local interface is a TAP or a TUN (the link carries Ethernet frames either way).
/// <see cref="Datapath"/> says whether vop's pump or the kernel's vhost-net moves the device side's packets.
/// </summary>
public sealed record NetDeviceOptions(string Name, string Tap, byte[] Mac, int Mtu, ushort QueueSize = 256, int QueuePairs = 1, NetMode Mode = NetMode.Tap, NetDatapath Datapath = NetDatapath.Pump)
{
    /// <summary>The most pairs a net device serves over vhost-user (each pair is a thread and a TAP queue).</summary>
    public const int MaxQueuePairs = 8;

    /// <summary>The most pairs over a vop window: 2·N data queues and the control queue fit a slot's 16 queue entries.</summary>
    public const int MaxWindowQueuePairs = (Links.Transport.WindowLayout.MaxQueuesPerDevice - 1) / 2;
}
