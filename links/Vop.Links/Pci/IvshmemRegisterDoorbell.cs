using Vop.Links.Doorbells;

namespace Vop.Links.Pci;

/// <summary>
/// Rings an ivshmem peer from inside a guest: a write of (peer &lt;&lt; 16 | vector) to the Doorbell
/// register at BAR0 + 12 (QEMU docs/specs/ivshmem-spec.rst), which QEMU turns into a write to that peer's
/// eventfd. A failed write means the device is gone; the supervisor notices that by the heartbeat.
/// </summary>
public sealed class IvshmemRegisterDoorbell : Doorbell
{
    public const ulong DoorbellRegister = 12;

    private readonly VfioDevice _device;
    private readonly ulong _bar0;
    private readonly uint _value;

    public IvshmemRegisterDoorbell(VfioDevice device, ulong bar0Offset, ushort peer, int vector)
    {
        _device = device;
        _bar0 = bar0Offset;
        _value = ((uint)peer << 16) | (ushort)vector;
    }

    public override void Ring()
    {
        try
        {
            _device.WriteU32(_bar0, DoorbellRegister, _value);
        }
        catch (IOException)
        {
        }
    }
}
