namespace Vop.Links;

/// <summary>
/// What a link counts outside its rings, for metrics and status: what a peer did that was refused
/// (<c>vop_peer_refusals_total{reason}</c>), what the device side found damaged in the window parts it
/// owns and rewrote (<c>vop_window_repairs_total{part}</c>), and exceptions a supervisor thread contained
/// (<c>vop_internal_errors_total</c>). Bumped by control threads (rare), read at scrape time.
/// </summary>
public sealed class LinkCounters
{
    /// <summary>Refusal reasons (label values); docs/operations.md lists them.</summary>
    public static class Refusal
    {
        public const string ExtraClient = "extra_client";
        public const string UnsealedMemory = "unsealed_memory";
        public const string UnsafeWindowFile = "window_file";
        public const string BadHeader = "bad_header";
        public const string BadTable = "bad_table";
        public const string BadScratchpad = "bad_scratchpad";

        /// <summary>Every reason, so each series exists (at 0) before the first refusal and alerts have data.</summary>
        public static IReadOnlyList<string> All { get; } = [ExtraClient, UnsealedMemory, UnsafeWindowFile, BadHeader, BadTable, BadScratchpad];
    }

    /// <summary>Window parts the device side repairs (label values).</summary>
    public static class Part
    {
        public const string Header = "header";
        public const string State = "state";
        public const string Slot = "slot";

        public static IReadOnlyList<string> All { get; } = [Header, State, Slot];
    }

    private readonly Dictionary<string, long> _refusals = Refusal.All.ToDictionary(r => r, _ => 0L);
    private readonly Dictionary<string, long> _repairs = Part.All.ToDictionary(p => p, _ => 0L);
    private long _internalErrors;

    public void Refused(string reason) => Add(_refusals, reason);

    public void Repaired(string part) => Add(_repairs, part);

    public void InternalError() => Interlocked.Increment(ref _internalErrors);

    public IReadOnlyDictionary<string, long> Refusals => Copy(_refusals);

    public IReadOnlyDictionary<string, long> Repairs => Copy(_repairs);

    public long InternalErrors => Interlocked.Read(ref _internalErrors);

    private static void Add(Dictionary<string, long> d, string key)
    {
        lock (d)
        {
            d[key] = d.GetValueOrDefault(key) + 1;
        }
    }

    private static Dictionary<string, long> Copy(Dictionary<string, long> d)
    {
        lock (d)
        {
            return new Dictionary<string, long>(d);
        }
    }
}
