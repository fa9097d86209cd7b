using Vop.Appliance.Config;

namespace Vop.Appliance.Hosting;

/// <summary>
/// What a reload does to the running links, by name: a link only in the new config is added, one only in the
/// running set removed, one whose entry changed (<see cref="LinkConfig.Source"/>) restarted with its new
/// entry, and every other one left running untouched.
/// </summary>
public sealed record ReloadPlan(
    IReadOnlyList<LinkConfig> Added,
    IReadOnlyList<LinkConfig> Removed,
    IReadOnlyList<(LinkConfig Old, LinkConfig New)> Changed,
    IReadOnlyList<LinkConfig> Unchanged)
{
    public bool Empty => Added.Count == 0 && Removed.Count == 0 && Changed.Count == 0;

    public static ReloadPlan Between(IReadOnlyList<LinkConfig> running, IReadOnlyList<LinkConfig> next)
    {
        var old = running.ToDictionary(l => l.Name);
        var names = next.Select(l => l.Name).ToHashSet();
        return new ReloadPlan(
            [.. next.Where(l => !old.ContainsKey(l.Name))],
            [.. running.Where(l => !names.Contains(l.Name))],
            [.. next.Where(l => old.TryGetValue(l.Name, out LinkConfig? o) && o.Source != l.Source).Select(l => (old[l.Name], l))],
            [.. next.Where(l => old.TryGetValue(l.Name, out LinkConfig? o) && o.Source == l.Source)]);
    }

    /// <summary>One line for the log and for `vop reload`: "added b; removed c; restarted a (its entry changed); 2 unchanged".</summary>
    public string Describe()
    {
        var parts = new List<string>();
        if (Added.Count > 0)
        {
            parts.Add("added " + string.Join(", ", Added.Select(l => l.Name)));
        }

        if (Removed.Count > 0)
        {
            parts.Add("removed " + string.Join(", ", Removed.Select(l => l.Name)));
        }

        if (Changed.Count > 0)
        {
            parts.Add("restarted " + string.Join(", ", Changed.Select(c => c.New.Name)) + " (entry changed)");
        }

        parts.Add(Unchanged.Count == 1 ? "1 link unchanged" : $"{Unchanged.Count} links unchanged");
        return string.Join("; ", parts);
    }
}
