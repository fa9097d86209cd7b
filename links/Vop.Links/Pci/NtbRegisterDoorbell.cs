using Vop.Links.Doorbells;

namespace Vop.Links.Pci;

/// <summary>
/// Rings an NTB peer on one doorbell bit: the same register-write path as <see cref="IvshmemRegisterDoorbell"/>,
/// into the NTB's peer doorbell set register (<see cref="NtbRegisters.RingPeer"/>). Vectors beyond the
/// hardware's doorbell bits share bits (<see cref="NtbRegisterLayout.BitOf"/>); the woken side then wakes
/// every queue on that bit and each looks at its own ring.
/// </summary>
public sealed class NtbRegisterDoorbell : Doorbell
{
    private readonly NtbRegisters _registers;
    private readonly ulong _bit;

    public NtbRegisterDoorbell(NtbRegisters registers, int vector)
    {
        _registers = registers;
        _bit = 1UL << registers.Layout.BitOf(vector);
    }

    /// <summary>The doorbell bit this vector rings, as a mask.</summary>
    public ulong Bit => _bit;

    public override void Ring()
    {
        try
        {
            _registers.RingPeer(_bit);
        }
        catch (ObjectDisposedException)
        {
            // The link end is closing under a pump's last notification; the peer needs no wake-up from it.
        }
    }
}
