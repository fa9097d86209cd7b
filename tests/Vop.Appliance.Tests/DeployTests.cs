using System.Text.Json;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>The shipped deployment files are valid for the tools that consume them.</summary>
public sealed class DeployTests
{
    public static string Deploy
    {
        get
        {
            string dir = AppContext.BaseDirectory;
            while (!Directory.Exists(Path.Combine(dir, "deploy")))
            {
                dir = Path.GetDirectoryName(dir) ?? throw new DirectoryNotFoundException("deploy/ not found above the test binaries");
            }

            return Path.Combine(dir, "deploy");
        }
    }

    [Fact]
    public void PrometheusConfigAndRulesPassPromtool()
    {
        (int code, string output, string err) = Run.In(null, "promtool", "check", "config", Path.Combine(Deploy, "prometheus", "prometheus.yml"));
        Assert.True(code == 0, output + err);
        (code, output, err) = Run.In(null, "promtool", "check", "rules", Path.Combine(Deploy, "prometheus", "vop.rules.yml"));
        Assert.True(code == 0, output + err);
        Assert.Contains("SUCCESS: 8 rules found", output);
    }

    [Fact]
    public void SystemdUnitVerifies()
    {
        // The unit names /usr/bin/vop, which a test machine does not have installed: verify it with a stand-in.
        string dir = Directory.CreateTempSubdirectory("vop-unit-").FullName;
        try
        {
            string unit = File.ReadAllText(Path.Combine(Deploy, "systemd", "vop@.service")).Replace("/usr/bin/vop", "/bin/true", StringComparison.Ordinal);
            Assert.Contains("Type=notify", unit);
            File.WriteAllText(Path.Combine(dir, "vop@.service"), unit);
            (int code, string output, string err) = Run.In(null, "systemd-analyze", "verify", Path.Combine(dir, "vop@host.service"));
            Assert.True(code == 0 && (output + err).Trim().Length == 0, output + err);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("host.json")]
    [InlineData("card.json")]
    [InlineData("vm-vhost-user.json")]
    [InlineData("guest-ivshmem.json")]
    [InlineData("vm-pair-device.json")]
    [InlineData("vm-pair-driver.json")]
    public void ExampleConfigsAreValid(string name)
    {
        (int code, string output, string err) = Run.In(null, Run.Vop("check-config", Path.Combine(Deploy, "examples", name)));
        Assert.True(code == 0, output + err);
    }

    [Fact]
    public void DashboardHasTheVariablesOperatorsExpect()
    {
        using JsonDocument d = JsonDocument.Parse(File.ReadAllText(Path.Combine(Deploy, "grafana", "dashboards", "vop.json")));
        Assert.False(d.RootElement.TryGetProperty("__inputs", out _));
        string[] vars = [.. d.RootElement.GetProperty("templating").GetProperty("list").EnumerateArray().Select(v => v.GetProperty("name").GetString()!)];
        Assert.Equal(["datasource", "job", "instance", "link", "queue"], vars);
        Assert.Equal("datasource", d.RootElement.GetProperty("templating").GetProperty("list")[0].GetProperty("type").GetString());
        Assert.All(DashboardExpressions(), e => Assert.Contains("vop_", e));
    }

    /// <summary>Every PromQL expression of the dashboard panels.</summary>
    public static IReadOnlyList<string> DashboardExpressions()
    {
        using JsonDocument d = JsonDocument.Parse(File.ReadAllText(Path.Combine(Deploy, "grafana", "dashboards", "vop.json")));
        return [.. d.RootElement.GetProperty("panels").EnumerateArray()
            .SelectMany(p => p.GetProperty("targets").EnumerateArray())
            .Select(t => t.GetProperty("expr").GetString()!)];
    }
}
