using Vop.Links.Doorbells;
using Vop.Links.Transport;
using Vop.Links.Windows;

namespace Vop.Links.Pci;

/// <summary>
/// Rings an ivshmem peer from inside a guest: a write of (peer &lt;&lt; 16 | vector) to the Doorbell
/// register at BAR0 + 12 (QEMU docs/specs/ivshmem-spec.rst), which QEMU turns into a write to that peer's
/// eventfd. The peer is the one the other side's state block names (<see cref="WindowLayout.SideIvshmemPeer"/>,
/// read on every ring: another guest's vop publishes its IVPosition there), or peer 0 while it names none
/// (a host's loopback link serves the socket as peer 0 and publishes nothing). A failed write means the
/// device is gone; the supervisor notices that by the heartbeat.
/// </summary>
public sealed class IvshmemRegisterDoorbell : Doorbell
{
    public const ulong DoorbellRegister = 12;
    public const ulong PositionRegister = 8;

    private readonly VfioDevice _device;
    private readonly ulong _bar0;
    private readonly uint _vector;
    private readonly WindowAccessor _window;
    private readonly ulong _peerState;

    public IvshmemRegisterDoorbell(VfioDevice device, ulong bar0Offset, in WindowAccessor window, ulong peerStateBlock, int vector)
    {
        _device = device;
        _bar0 = bar0Offset;
        _vector = (ushort)vector;
        _window = window;
        _peerState = peerStateBlock;
    }

    /// <summary>The ivshmem peer id the side state block at <paramref name="block"/> publishes, or 0 when it publishes none.</summary>
    public static ushort PublishedPeer(in WindowAccessor window, ulong block)
    {
        // Read once; anything but "known | 16-bit id" (never written, or garbage from a hostile peer) means peer 0.
        uint v = window.ReadU32Acquire(block + WindowLayout.SideIvshmemPeer);
        return (v & 0xFFFF0000) == WindowLayout.IvshmemPeerKnown ? (ushort)v : (ushort)0;
    }

    public override void Ring()
    {
        uint value = ((uint)PublishedPeer(_window, _peerState) << 16) | _vector;
        try
        {
            _device.WriteU32(_bar0, DoorbellRegister, value);
        }
        catch (IOException)
        {
        }
    }
}
