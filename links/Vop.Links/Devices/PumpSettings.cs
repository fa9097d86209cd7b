namespace Vop.Links.Devices;

/// <summary>How a net pump waits when there is no work (config key <c>poll</c> of a link).</summary>
public enum PollMode
{
    /// <summary>Keep polling a short window after work (a reply usually comes back within it), then sleep.</summary>
    Adaptive,

    /// <summary>Never sleep: poll the rings and the TAP in a loop that yields the CPU to other runnable threads; one core per pump.</summary>
    Busy,

    /// <summary>Sleep as soon as a pass finds nothing: the least CPU, a wake-up per burst.</summary>
    Sleep,
}

/// <summary>How a link's datapath threads run: how they wait for work and on which CPUs (config keys poll and cpus).</summary>
public sealed record PumpSettings(PollMode Poll = PollMode.Adaptive, CpuSet? Cpus = null)
{
    public static PumpSettings Default { get; } = new();
}
