using Microsoft.Extensions.Logging;
using Vop.Links.Devices;
using Vop.Links.VhostUser;
using Vop.Netstack.Tap;
using Vop.Netstack.VhostNet;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Device;

/// <summary>
/// The virtio-net device on the device side, bridged to a local TAP: frames read from the TAP go to the
/// driver through the receive queues, frames the driver transmits go to the TAP. The TAP exists (admin up,
/// NO-CARRIER) for the whole life of the backend; carrier follows the device being live. With N &gt; 1
/// queue pairs it offers VIRTIO_NET_F_MQ: queues rx0, tx0, …, rxN-1, txN-1, then the control queue
/// (virtio 1.2 5.1.2), one pump and one TAP queue per pair.
/// </summary>
public sealed class NetDeviceBackend : NetBackend, IDeviceBackend, IVhostUserDevice
{
    private readonly NetDeviceOptions _options;
    private readonly ulong _kernelFeatures;

    public NetDeviceBackend(NetDeviceOptions options, ILogger log)
        : base(options.Name, options.Tap, options.Mtu, options.QueuePairs, options.Mode == NetMode.Tun ? Tun.TunAddresses.ForDevice(options.Mac) : null, log)
    {
        _options = options;
        Stats = Cells.For(WindowQueueCount);

        // With the kernel's datapath, offer only what vhost-net supports (asked once, here).
        _kernelFeatures = options.Datapath == NetDatapath.VhostNet ? VhostNetDevice.KernelFeatures() : 0;
    }

    /// <summary>Over given TAP queues, one per pair (tests: frame pipes).</summary>
    internal NetDeviceBackend(NetDeviceOptions options, TapDevice[] taps, ILogger log)
        : base(options.Name, options.Tap, taps, log)
    {
        _options = options;
        Stats = Cells.For(WindowQueueCount);
    }

    private int Pairs => _options.QueuePairs;

    /// <summary>On a window: 2·N data queues, plus the control queue when N &gt; 1.</summary>
    private int WindowQueueCount => Pairs > 1 ? (2 * Pairs) + 1 : 2;

    public ulong OfferedFeatures => _options.Datapath == NetDatapath.VhostNet
        ? VhostNetDevice.Mask(NetFeatures.Offered, _kernelFeatures)
        : Pairs > 1 ? NetFeatures.Offered | NetFeatures.Multiqueue : NetFeatures.Offered;

    /// <summary>Pump or the kernel's vhost-net (one pair, window links).</summary>
    public NetDatapath Datapath => _options.Datapath;

    /// <summary>With several pairs also MQ: QEMU masks the guest's MQ with the back-end's (vhost_net.c user_feature_bits) and keeps CTRL_VQ itself.</summary>
    public ulong VhostUserFeatures => Pairs > 1 ? NetFeatures.OfferedToVhostUser | NetFeatures.Mq : NetFeatures.OfferedToVhostUser;

    /// <summary>Over vhost-user the control queue stays in QEMU: the back-end serves the 2·N data queues.</summary>
    int IVhostUserDevice.QueueCount => 2 * Pairs;

    public byte[] Config => new NetConfigSpace(_options.Mac, true, (ushort)_options.Mtu, (ushort)Pairs).Encode();

    public IReadOnlyList<ushort> QueueSizes => [.. Enumerable.Repeat(_options.QueueSize, WindowQueueCount)];

    /// <summary>
    /// A window session. Without MQ negotiated only the first pair runs. With MQ every pair's pump runs,
    /// but the driver uses pair 0 alone until its VQ_PAIRS_SET (5.1.6.5.5), which the control thread applies.
    /// </summary>
    public void Start(DeviceSession session)
    {
        Stop();
        DeviceQueueSet set = session.QueueSet();
        if (Pairs == 1 || !NetFeatures.HasMultiqueue(set.Negotiated))
        {
            StartPairs(set, 1, null, null);
            return;
        }

        var gate = new PairGate(1);
        var control = new NetControlPump(_options.Tap, set, 2 * Pairs, Pairs, pairs =>
        {
            // Attach before the gate opens and detach after it closes, so no pump reads a queue the kernel
            // is not steering to, and no flow is steered to a queue nobody reads for longer than the switch.
            for (int q = 0; q < pairs; q++)
            {
                Taps[q].SetQueueAttached(true);
            }

            gate.Set(pairs);
            WakePumps();
            for (int q = pairs; q < Taps.Length; q++)
            {
                Taps[q].SetQueueAttached(false);
            }
        });
        StartPairs(set, Pairs, gate, control);
    }

    /// <summary>A vhost-user session: the front-end's enabled pairs (QEMU applies VQ_PAIRS_SET as vring enables).</summary>
    public void Start(DeviceQueueSet queues)
    {
        Stop();
        StartPairs(queues, Math.Min(queues.Queues.Count / 2, Pairs), null, null);
    }

    private void StartPairs(DeviceQueueSet set, int pumps, PairGate? gate, NetControlPump? control)
    {
        if (IsTap)
        {
            Tap.SetOffloads(NetFeatures.TapOffloadsTowardDriver(set.Negotiated));
        }

        AttachQueues(gate?.Active ?? pumps);
        if (_options.Datapath == NetDatapath.VhostNet && control is null && pumps == 1)
        {
            // The kernel moves pair 0's packets: no vop pump thread runs for this session.
            RunKernel(VhostNetDevice.Start(set, 0, Taps[0], _options.Tap), set.Negotiated);
            return;
        }

        var running = new NetPump[pumps];
        for (int p = 0; p < pumps; p++)
        {
            running[p] = new NetDevicePump(_options, Taps[p], set, Capture, p, gate);
        }

        Run(running, control, carrier: true, set.Negotiated);
    }
}
