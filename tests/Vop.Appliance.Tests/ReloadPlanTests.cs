using Vop.Appliance.Config;
using Vop.Appliance.Hosting;

namespace Vop.Appliance.Tests;

/// <summary>What a reload does to the running links, decided from the configs alone.</summary>
public sealed class ReloadPlanTests
{
    private static IReadOnlyList<LinkConfig> Links(string json) => ConfigLoader.Parse("host.json", json).Links;

    private const string A = """{ "name": "a", "role": "device", "socket": "/run/vop/a.sock", "windowSize": "64M", "devices": [ { "type": "net", "tap": "ta" } ] }""";
    private const string B = """{ "name": "b", "role": "device", "socket": "/run/vop/b.sock", "windowSize": "64M", "devices": [ { "type": "net", "tap": "tb" } ] }""";
    private const string BWithMtu = """{ "name": "b", "role": "device", "socket": "/run/vop/b.sock", "windowSize": "64M", "devices": [ { "type": "net", "tap": "tb", "mtu": 9000 } ] }""";
    private const string C = """{ "name": "c", "role": "driver", "socket": "/run/vop/c.sock", "devices": [ { "type": "net", "tap": "tc" } ] }""";

    [Fact]
    public void UnchangedEntriesStayAndEveryOtherOneIsAddedRemovedOrRestarted()
    {
        ReloadPlan plan = ReloadPlan.Between(Links($$"""{ "links": [ {{A}}, {{B}} ] }"""), Links($$"""{ "links": [ {{BWithMtu}}, {{C}}, {{A}} ] }"""));
        Assert.Equal(["c"], plan.Added.Select(l => l.Name));
        Assert.Empty(plan.Removed);
        Assert.Equal(["b"], plan.Changed.Select(c => c.New.Name));
        Assert.Equal(9000, ((NetDeviceEntry)plan.Changed[0].New.Devices[0]).Options.Mtu);
        Assert.Equal(["a"], plan.Unchanged.Select(l => l.Name));
        Assert.Equal("added c; restarted b (entry changed); 1 link unchanged", plan.Describe());

        plan = ReloadPlan.Between(Links($$"""{ "links": [ {{A}}, {{B}} ] }"""), Links($$"""{ "links": [ {{A}} ] }"""));
        Assert.Equal(["b"], plan.Removed.Select(l => l.Name));
        Assert.Equal("removed b; 1 link unchanged", plan.Describe());

        // Whitespace and key order are not changes: the entries are compared as parsed.
        plan = ReloadPlan.Between(Links($$"""{ "links": [ {{A}} ] }"""), Links("""{ "links": [ { "devices": [ { "tap": "ta", "type": "net" } ], "name": "a",   "socket": "/run/vop/a.sock", "role": "device", "windowSize": "64M" } ] }"""));
        Assert.True(plan.Empty);
        Assert.Equal("1 link unchanged", plan.Describe());
    }
}
