using Microsoft.Extensions.Logging;
using Vop.Links.Devices;
using Vop.Links.Transport;
using Vop.Netstack.Tap;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Driver;

/// <summary>
/// The virtio-net driver on the driver side, bound to a local TAP: it takes MAC and MTU from the device's
/// config space, negotiates the offloads, owns the receive and transmit buffers in the window and moves
/// frames between them and the TAP. Carrier follows the device's link status and the session. When the
/// device offers MQ and this side is configured for more than one pair, it uses min(both) pairs: one pump
/// and one TAP queue each, switched on with VQ_PAIRS_SET.
/// </summary>
public sealed class NetDriverBackend : NetBackend, IDriverBackend
{
    /// <summary>How long the device side has to answer VQ_PAIRS_SET.</summary>
    private static readonly TimeSpan s_controlTimeout = TimeSpan.FromSeconds(2);

    /// <summary>The most data queues a device table slot holds (WindowLayout.MaxQueuesPerDevice).</summary>
    private const int MaxDataPairs = WindowLayout.MaxQueuesPerDevice / 2;

    /// <summary>A TUN end's own MAC when the device gives none (no VIRTIO_NET_F_MAC): 02:00:00:00:00:ff.</summary>
    private static readonly ulong s_noMac = Tun.Ethernet.DerivedFrom(new byte[6]);

    private readonly NetDriverOptions _options;

    public NetDriverBackend(NetDriverOptions options, ILogger log)
        : base(options.Name, options.Tap, options.FallbackMtu, options.QueuePairs, options.Mode == NetMode.Tun ? new Tun.TunAddresses(s_noMac, Tun.Ethernet.Broadcast) : null, log)
    {
        _options = options;
        // Cells for every queue a slot can hold: the device decides how many it has (a device of more pairs
        // than we use still lays them all out). Shown: 2 until the first session, then the device's count.
        Cells = new NetQueueCells(MaxDataPairs);
        Stats = Cells.For(2);
    }

    /// <summary>Over given TAP queues, one per pair it may use (tests: frame pipes).</summary>
    internal NetDriverBackend(NetDriverOptions options, TapDevice[] taps, ILogger log)
        : base(options.Name, options.Tap, taps, log)
    {
        _options = options with { QueuePairs = taps.Length };
        Cells = new NetQueueCells(MaxDataPairs);
        Stats = Cells.For(2);
    }

    private new NetQueueCells Cells { get; }

    /// <summary>Queues of the device as last laid out (2 before the first session).</summary>
    public int QueueCount => Stats.Count;

    public ulong ChooseFeatures(DriverSlot slot)
    {
        Stats = Cells.For(slot.Queues.Count);
        ulong wanted = slot.DeviceFeatures & NetFeatures.Offered;
        if (PairsOffered(slot) > 1 && _options.QueuePairs > 1)
        {
            wanted |= NetFeatures.Multiqueue;
        }

        return wanted;
    }

    /// <summary>
    /// max_virtqueue_pairs when the device offers MQ and CTRL_VQ and lays out exactly 2·N + 1 queues; 1 otherwise
    /// (a table that disagrees with itself is used as a single pair).
    /// </summary>
    private static int PairsOffered(DriverSlot slot)
    {
        if ((slot.DeviceFeatures & NetFeatures.Multiqueue) != NetFeatures.Multiqueue || slot.Config.Length < NetConfigSpace.Size)
        {
            return 1;
        }

        int max = NetConfigSpace.Decode(slot.Config).MaxQueuePairs;
        return max >= 2 && slot.Queues.Count == (2 * max) + 1 ? max : 1;
    }

    public void Start(DriverSession session)
    {
        Stop();
        if (session.Slot.Queues.Count < 2)
        {
            throw new InvalidDataException($"{_options.Name}: virtio-net device has {session.Slot.Queues.Count} queues, needs 2");
        }

        NetConfigSpace config = NetConfigSpace.Decode(session.Slot.Config);
        ulong f = session.Negotiated;
        int mtu = (f & NetFeatures.Mtu) != 0 && config.Mtu >= 68 ? config.Mtu : _options.FallbackMtu;
        if (mtu > TapDevice.MaxMtu)
        {
            // virtio allows up to 65535; a TAP stops at 65521. Frames that large cannot come from our TAP anyway.
            NetLog.MtuClamped(Log, TapName, mtu, TapDevice.MaxMtu);
            mtu = TapDevice.MaxMtu;
        }
        if (Tap.TunAddresses is Tun.TunAddresses tun)
        {
            // A TUN end is the NIC the config space describes: it answers with that MAC and sends to the peer's,
            // broadcast until the peer's first frame names it.
            tun.Reset((f & NetFeatures.Mac) != 0 ? Tun.Ethernet.Mac(config.Mac) : s_noMac, Tun.Ethernet.Broadcast);
        }

        if (IsTap)
        {
            if ((f & NetFeatures.Mac) != 0 && Tap.Mode == NetMode.Tap)
            {
                Tap.SetMac(config.Mac);
            }

            Tap.SetMtu(mtu);
            Tap.SetOffloads(NetFeatures.TapOffloadsTowardDevice(f));
        }

        int pairs = 1;
        if (NetFeatures.HasMultiqueue(f))
        {
            int offered = PairsOffered(session.Slot);
            pairs = Math.Min(offered, Taps.Length);
            byte? ack = NetControlClient.SetPairs(session, 2 * offered, pairs, s_controlTimeout);
            if (ack != NetControl.Ok)
            {
                throw new InvalidDataException($"{_options.Name}: device side answered VQ_PAIRS_SET({pairs}) with {(ack is byte a ? $"ack {a}" : "nothing")}");
            }
        }

        AttachQueues(pairs);
        var pumps = new NetPump[pairs];
        for (int p = 0; p < pairs; p++)
        {
            pumps[p] = new NetDriverPump(_options.Tap, Taps[p], session, mtu, Capture, p);
        }

        Run(pumps, null, carrier: (f & NetFeatures.Status) == 0 || config.LinkUp, f);
    }
}
