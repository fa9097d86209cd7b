namespace Vop.VirtioConsole;

/// <summary>Why a console chunk was dropped; the value indexes <c>QueueStats.Drops</c>, the name is the metric label.</summary>
public enum ConsoleDropReason
{
    Oversize = 0, // a transmit chain with writable parts, truncated, or larger than 16 chunks
}

public static class ConsoleDropReasonNames
{
    private static readonly string[] s_names = ["oversize"];

    /// <summary>Every reason's label, indexed by the reason's value.</summary>
    public static IReadOnlyList<string> All => s_names;
}
