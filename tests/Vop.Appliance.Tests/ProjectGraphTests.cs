using System.Xml.Linq;

namespace Vop.Appliance.Tests;

/// <summary>
/// The dependency graph is part of the design (docs/architecture.md): links knows nothing of Prometheus
/// or the appliance; the devices (netstack, virtio-console) depend on links only; metrics exports what the
/// others count; the appliance composes. Read from the product csproj files, so a stray reference fails here.
/// </summary>
public sealed class ProjectGraphTests
{
    private static readonly string[] s_productFolders = ["appliance", "links", "metrics", "netstack"];

    private static string Root => Path.GetDirectoryName(DeployTests.Deploy)!;

    private static Dictionary<string, (List<string> Projects, List<string> Packages)> Graph()
    {
        var graph = new Dictionary<string, (List<string>, List<string>)>();
        foreach (string folder in s_productFolders)
        {
            foreach (string csproj in Directory.EnumerateFiles(Path.Combine(Root, folder), "*.csproj", SearchOption.AllDirectories))
            {
                XDocument x = XDocument.Load(csproj);
                string dir = Path.GetDirectoryName(csproj)!;
                List<string> projects = [.. x.Descendants("ProjectReference").Select(r => Path.GetFileNameWithoutExtension(Path.GetFullPath(Path.Combine(dir, r.Attribute("Include")!.Value))))];
                List<string> packages = [.. x.Descendants("PackageReference").Select(r => r.Attribute("Include")!.Value)];
                graph[Path.GetFileNameWithoutExtension(csproj)] = (projects, packages);
            }
        }

        return graph;
    }

    private static HashSet<string> Closure(Dictionary<string, (List<string> Projects, List<string> Packages)> graph, string project)
    {
        var seen = new HashSet<string>();
        var stack = new Stack<string>([project]);
        while (stack.TryPop(out string? p))
        {
            foreach (string r in graph[p].Projects)
            {
                Assert.True(graph.ContainsKey(r), $"{p} references {r}, which is not a product project");
                if (seen.Add(r))
                {
                    stack.Push(r);
                }
            }
        }

        return seen;
    }

    [Fact]
    public void EveryProductProjectIsWhereItsNameSays()
    {
        var graph = Graph();
        Assert.Equal(["Vop.Appliance", "Vop.Links", "Vop.Metrics", "Vop.Netstack", "Vop.VirtioConsole"], graph.Keys.Order(StringComparer.Ordinal));
        foreach (string folder in s_productFolders)
        {
            foreach (string csproj in Directory.EnumerateFiles(Path.Combine(Root, folder), "*.csproj", SearchOption.AllDirectories))
            {
                string name = Path.GetFileNameWithoutExtension(csproj);
                Assert.Equal(name, Path.GetFileName(Path.GetDirectoryName(csproj)));
                string? rootNamespace = XDocument.Load(csproj).Descendants("RootNamespace").SingleOrDefault()?.Value;
                Assert.True(rootNamespace is null || rootNamespace == name, $"{name} declares RootNamespace {rootNamespace}");
            }
        }
    }

    [Fact]
    public void ReferencesFormADagThatPointsInward()
    {
        var graph = Graph();
        foreach (string p in graph.Keys)
        {
            Assert.DoesNotContain(p, Closure(graph, p)); // no cycle through p
        }

        Assert.Empty(Closure(graph, "Vop.Links"));
        Assert.Equal(["Vop.Links"], Closure(graph, "Vop.Netstack"));
        Assert.Equal(["Vop.Links"], Closure(graph, "Vop.VirtioConsole"));
        Assert.DoesNotContain("Vop.Appliance", Closure(graph, "Vop.Metrics"));
        Assert.Equal(["Vop.Links", "Vop.Metrics", "Vop.Netstack", "Vop.VirtioConsole"], Closure(graph, "Vop.Appliance").Order(StringComparer.Ordinal));
    }

    [Fact]
    public void OnlyMetricsKnowsPrometheusAndOnlyTheApplianceKnowsHostingAndTheCli()
    {
        var graph = Graph();
        foreach ((string p, (List<string> _, List<string> packages)) in graph)
        {
            IEnumerable<string> all = Closure(graph, p).Append(p).SelectMany(q => graph[q].Packages);
            if (p is not ("Vop.Metrics" or "Vop.Appliance"))
            {
                Assert.DoesNotContain("prometheus-net", all);
            }

            if (p != "Vop.Appliance")
            {
                Assert.DoesNotContain(all, a => a.StartsWith("Microsoft.Extensions.Hosting", StringComparison.Ordinal) || a == "System.CommandLine");
            }
        }
    }
}
