using System.Diagnostics;
using Vop.Links.Devices;
using Vop.Links.Rings;
using Vop.Links.Windows;
using Vop.Netstack.Virtio;

namespace Vop.Netstack.Driver;

/// <summary>
/// The driver side's use of the control queue: one VQ_PAIRS_SET after DRIVER_OK (virtio 1.2 5.1.6.5.5),
/// waited for with a bound, on the supervisor's thread before the pumps start. A device that does not
/// answer in time, or answers ERR, fails the session.
/// </summary>
internal static class NetControlClient
{
    private const uint BufferSize = 64;
    private const ulong AckAt = 32;

    /// <summary>The device's ack, or null when it did not answer within <paramref name="timeout"/>.</summary>
    public static byte? SetPairs(DriverSession session, int queue, int pairs, TimeSpan timeout)
    {
        DriverQueue q = session.Queues[queue];
        WindowAccessor w = session.End.Window.Accessor;
        ulong at = session.Buffers.Carve(1, BufferSize);
        NetControl.EncodePairsSet(w.Bytes(at, NetControl.PairsSetSize), (ushort)pairs);
        w.Bytes(at + AckAt, 1)[0] = 0xFF; // neither OK nor ERR: a used entry that wrote nothing shows
        if (!q.TryAdd([new BufferSegment(at, NetControl.PairsSetSize, false), new BufferSegment(at + AckAt, 1, true)], out _))
        {
            return null;
        }

        q.Publish();
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (q.TryReap(out UsedElement used))
            {
                q.FlushReapStats(NetControl.PairsSetSize);
                return used.LengthValid && used.Length >= 1 ? w.Bytes(at + AckAt, 1)[0] : NetControl.Err;
            }

            if (q.Fault != RingErrorKind.None)
            {
                return null;
            }

            Thread.Sleep(1);
        }

        return null;
    }
}
