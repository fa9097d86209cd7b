using Vop.Links.Windows;

namespace Vop.Links.Transport;

/// <summary>What one side's state block says, read once.</summary>
public readonly record struct SideSnapshot(SideState State, uint Epoch, ulong Heartbeat);

/// <summary>
/// One side's state word, epoch and heartbeat. The epoch is a fresh random non-zero value on every
/// start, so the peer tells "restarted" (epoch changed) from "idle" (heartbeat still moving) from "gone"
/// (heartbeat stopped or state Stopped).
/// </summary>
public sealed class SideStateBlock
{
    private readonly WindowAccessor _window;
    private readonly ulong _offset;
    private ulong _heartbeat;
    private bool _running;

    public SideStateBlock(in WindowAccessor window, ulong offset)
    {
        _window = window;
        _offset = offset;
    }

    public uint Epoch { get; private set; }

    /// <summary>Announces a new start: Starting with a new epoch, then Running.</summary>
    public void Start()
    {
        uint epoch;
        do
        {
            // Unique per start is all an epoch needs; Random.Shared is seeded by the kernel, not by OpenSSL,
            // so the native binary does not need libssl at run time for it.
            epoch = (uint)Random.Shared.Next(1, int.MaxValue);
        }
        while (epoch == 0 || epoch == Epoch);

        Epoch = epoch;
        _window.WriteU32Release(_offset + WindowLayout.SideStateWord, (uint)SideState.Starting);
        _window.WriteU32(_offset + WindowLayout.SideEpoch, epoch);
        _window.WriteU32(_offset + WindowLayout.SideProcessId, (uint)Environment.ProcessId);
        _heartbeat = _window.ReadU64(_offset + WindowLayout.SideHeartbeat);
        _window.WriteU32Release(_offset + WindowLayout.SideStateWord, (uint)SideState.Running);
        _running = true;

        // Beat once at once: a peer's PeerHeartbeat counts a side alive only from a heartbeat it saw move,
        // so a side that died between Start and its first periodic beat (a driver killed mid-negotiation)
        // would otherwise never have been alive for it, and its departure never noticed.
        Beat();
    }

    /// <summary>
    /// True unless our running block was overwritten: state, epoch or pid differ from what we wrote (the
    /// heartbeat needs no check, every <see cref="Beat"/> rewrites it from our own count).
    /// </summary>
    public bool IsIntact() =>
        !_running ||
        (_window.ReadU32Acquire(_offset + WindowLayout.SideStateWord) == (uint)SideState.Running &&
         _window.ReadU32(_offset + WindowLayout.SideEpoch) == Epoch &&
         _window.ReadU32(_offset + WindowLayout.SideProcessId) == (uint)Environment.ProcessId);

    /// <summary>Rewrites a damaged running block with the same epoch: we did not restart.</summary>
    public void Repair()
    {
        _window.WriteU32(_offset + WindowLayout.SideEpoch, Epoch);
        _window.WriteU32(_offset + WindowLayout.SideProcessId, (uint)Environment.ProcessId);
        _window.WriteU32Release(_offset + WindowLayout.SideStateWord, (uint)SideState.Running);
    }

    /// <summary>Bumps the heartbeat; call periodically while running.</summary>
    public void Beat() => _window.WriteU64Release(_offset + WindowLayout.SideHeartbeat, ++_heartbeat);

    public void Stop()
    {
        _running = false;
        _window.WriteU32Release(_offset + WindowLayout.SideStateWord, (uint)SideState.Stopped);
    }

    /// <summary>Reads a side's block (ours or the peer's).</summary>
    public static SideSnapshot Read(in WindowAccessor window, ulong offset)
    {
        uint state = window.ReadU32Acquire(offset + WindowLayout.SideStateWord);
        uint epoch = window.ReadU32(offset + WindowLayout.SideEpoch);
        ulong beat = window.ReadU64Acquire(offset + WindowLayout.SideHeartbeat);
        return new SideSnapshot(state <= (uint)SideState.Stopped ? (SideState)state : SideState.Absent, epoch, beat);
    }
}
