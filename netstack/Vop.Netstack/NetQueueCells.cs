using Vop.Links.Stats;

namespace Vop.Netstack;

/// <summary>
/// A net device's statistics cells in virtio queue order: rx0, tx0, rx1, tx1, …, then ctrl when the device
/// has a control queue (several pairs). Data cells are kept by index, so a pair's counters survive a
/// session that uses fewer or more pairs.
/// </summary>
internal sealed class NetQueueCells
{
    private readonly QueueStats[] _data;
    private readonly QueueStats _control = new("ctrl", NetDropReasonNames.All);

    public NetQueueCells(int pairs)
    {
        _data = [.. Enumerable.Range(0, 2 * pairs).Select(q => new QueueStats((q % 2 == 0 ? "rx" : "tx") + (q / 2).ToString(System.Globalization.CultureInfo.InvariantCulture), NetDropReasonNames.All))];
    }

    /// <summary>Cells for a device of <paramref name="queues"/> queues: 2·N data queues, plus the control queue when the count is odd.</summary>
    public QueueStats[] For(int queues)
    {
        bool control = queues >= 3 && queues % 2 == 1;
        int data = Math.Min(control ? queues - 1 : queues, _data.Length);
        return control ? [.. _data.AsSpan(0, data), _control] : _data[..data];
    }
}
