using Microsoft.Extensions.Logging;
using Vop.Links.Devices;
using Vop.Links.VhostUser;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Device;

/// <summary>
/// The virtio-net device on the device side, bridged to a local TAP: frames read from the TAP go to the
/// driver through the receive queue, frames the driver transmits go to the TAP. The TAP exists (admin up,
/// NO-CARRIER) for the whole life of the backend; carrier follows the device being live.
/// </summary>
public sealed class NetDeviceBackend : NetBackend, IDeviceBackend, IVhostUserDevice
{
    private readonly NetDeviceOptions _options;

    public NetDeviceBackend(NetDeviceOptions options, ILogger log)
        : base(options.Name, options.Tap, options.Mtu, log)
    {
        _options = options;
    }

    public ulong OfferedFeatures => NetFeatures.Offered;

    public ulong VhostUserFeatures => NetFeatures.OfferedToVhostUser;

    public int QueueCount => 2;

    public byte[] Config => new NetConfigSpace(_options.Mac, true, (ushort)_options.Mtu).Encode();

    public IReadOnlyList<ushort> QueueSizes => [_options.QueueSize, _options.QueueSize];

    public void Start(DeviceSession session) => Start(session.QueueSet());

    /// <summary>Serves a receive/transmit queue pair in whatever memory it lives (vop window or vhost-user guest).</summary>
    public void Start(DeviceQueueSet queues)
    {
        Stop();
        Tap.SetOffloads(NetFeatures.TapOffloadsTowardDriver(queues.Negotiated));
        Run(new NetDevicePump(_options, Tap, queues, Capture), carrier: true, queues.Negotiated);
    }
}
