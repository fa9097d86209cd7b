using Microsoft.Extensions.Logging;
using Vop.Links.Devices;
using Vop.Links.Transport;
using Vop.Netstack.Tap;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Driver;

/// <summary>
/// The virtio-net driver on the driver side, bound to a local TAP: it takes MAC and MTU from the device's
/// config space, negotiates the offloads, owns the receive and transmit buffers in the window and moves
/// frames between them and the TAP. Carrier follows the device's link status and the session.
/// </summary>
public sealed class NetDriverBackend : NetBackend, IDriverBackend
{
    private readonly NetDriverOptions _options;

    public NetDriverBackend(NetDriverOptions options, ILogger log)
        : base(options.Name, options.Tap, options.FallbackMtu, log)
    {
        _options = options;
    }

    public ulong ChooseFeatures(DriverSlot slot) => slot.DeviceFeatures & NetFeatures.Offered;

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
        if ((f & NetFeatures.Mac) != 0)
        {
            Tap.SetMac(config.Mac);
        }

        Tap.SetMtu(mtu);
        Tap.SetOffloads(NetFeatures.TapOffloadsTowardDevice(f));
        Run(new NetDriverPump(_options.Tap, Tap, session, mtu, Capture), carrier: (f & NetFeatures.Status) == 0 || config.LinkUp, f);
    }
}
