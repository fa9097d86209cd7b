namespace Vop.Netstack.Device;

/// <summary>
/// How many queue pairs the driver uses (VQ_PAIRS_SET; 1 until it says otherwise, 5.1.6.5.5). Written by
/// the control thread, read by each pair's pump once per pass: a pump at or above it reads no TAP, so no
/// frame goes to a receive queue the driver has stopped using.
/// </summary>
internal sealed class PairGate(int active)
{
    private int _active = active;

    public int Active => Volatile.Read(ref _active);

    public void Set(int pairs) => Volatile.Write(ref _active, pairs);
}
