using Vop.Links.Transport;
using Vop.Netstack.Tap;

namespace Vop.Netstack.Virtio;

/// <summary>virtio-net feature bits (virtio 1.2 section 5.1.3) and how they map to TAP offloads.</summary>
public static class NetFeatures
{
    public const ulong Csum = 1UL << 0;
    public const ulong GuestCsum = 1UL << 1;
    public const ulong Mtu = 1UL << 3;
    public const ulong Mac = 1UL << 5;
    public const ulong GuestTso4 = 1UL << 7;
    public const ulong GuestTso6 = 1UL << 8;
    public const ulong GuestEcn = 1UL << 9;
    public const ulong HostTso4 = 1UL << 11;
    public const ulong HostTso6 = 1UL << 12;
    public const ulong HostEcn = 1UL << 13;
    public const ulong MrgRxbuf = 1UL << 15;
    public const ulong Status = 1UL << 16;
    public const ulong CtrlVq = 1UL << 17;
    public const ulong Mq = 1UL << 22;

    /// <summary>What a device with several queue pairs adds to <see cref="Offered"/>: MQ needs CTRL_VQ (virtio 1.2 5.1.3.1).</summary>
    public const ulong Multiqueue = CtrlVq | Mq;

    /// <summary>
    /// What the vop net device offers: checksum and TSO offload both ways, so 64 KiB TSO frames cross whole,
    /// with 64 KiB receive buffers instead of MRG_RXBUF.
    /// </summary>
    public const ulong Offered = Csum | GuestCsum | Mtu | Mac | GuestTso4 | GuestTso6 | GuestEcn |
        HostTso4 | HostTso6 | HostEcn | Status | VirtioFeatures.Version1 | VirtioFeatures.EventIdx;

    /// <summary>
    /// What a vhost-user back-end offers: the datapath bits only, plus mergeable receive buffers (a Linux
    /// guest then posts page-sized buffers instead of 17-page "big packet" chains). QEMU keeps the config
    /// space (MAC, MTU, link status) and the control queue itself and masks anything else.
    /// </summary>
    public const ulong OfferedToVhostUser = (Offered & ~(Mtu | Mac | Status)) | MrgRxbuf;

    /// <summary>True when both MQ and the control queue it needs were negotiated.</summary>
    public static bool HasMultiqueue(ulong negotiated) => (negotiated & Multiqueue) == Multiqueue;

    /// <summary>
    /// TAP offloads for the end that forwards frames *to the driver* (device side): the kernel may hand
    /// us partial checksums / TSO frames only if the driver accepts them (GUEST_*), as QEMU's tap backend does.
    /// </summary>
    public static uint TapOffloadsTowardDriver(ulong negotiated) => TapOffloads(negotiated, GuestCsum, GuestTso4, GuestTso6, GuestEcn);

    /// <summary>TAP offloads for the end that forwards frames *to the device* (driver side): HOST_* and CSUM.</summary>
    public static uint TapOffloadsTowardDevice(ulong negotiated) => TapOffloads(negotiated, Csum, HostTso4, HostTso6, HostEcn);

    private static uint TapOffloads(ulong f, ulong csum, ulong tso4, ulong tso6, ulong ecn)
    {
        if ((f & csum) == 0)
        {
            return 0; // TSO needs checksum offload
        }

        uint t = TapInterop.TUN_F_CSUM;
        t |= (f & tso4) != 0 ? TapInterop.TUN_F_TSO4 : 0;
        t |= (f & tso6) != 0 ? TapInterop.TUN_F_TSO6 : 0;
        t |= (f & ecn) != 0 && (t & (TapInterop.TUN_F_TSO4 | TapInterop.TUN_F_TSO6)) != 0 ? TapInterop.TUN_F_TSO_ECN : 0;
        return t;
    }

    /// <summary>Human-readable names of the set bits, for status output and logs.</summary>
    public static string Describe(ulong f)
    {
        var names = new List<string>();
        void Add(ulong bit, string name)
        {
            if ((f & bit) != 0)
            {
                names.Add(name);
            }
        }

        Add(Csum, "csum");
        Add(GuestCsum, "guest_csum");
        Add(Mtu, "mtu");
        Add(Mac, "mac");
        Add(GuestTso4, "guest_tso4");
        Add(GuestTso6, "guest_tso6");
        Add(GuestEcn, "guest_ecn");
        Add(HostTso4, "host_tso4");
        Add(HostTso6, "host_tso6");
        Add(HostEcn, "host_ecn");
        Add(MrgRxbuf, "mrg_rxbuf");
        Add(Status, "status");
        Add(CtrlVq, "ctrl_vq");
        Add(Mq, "mq");
        Add(VirtioFeatures.EventIdx, "event_idx");
        Add(VirtioFeatures.Version1, "version_1");
        return string.Join(',', names);
    }
}
