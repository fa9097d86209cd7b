using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>A daemon that cannot set up its TAP stops at once with one clear line.</summary>
[Collection(EndToEnd.Name)]
public sealed class DaemonErrorTests
{
    [Fact]
    public void TapNameTakenByAnotherInterfaceIsAClearError()
    {
        using var pair = new LinkPair();
        // Occupy the host TAP's name with a veth in the host namespace.
        Run.Must(Run.In(pair.HostNs, "ip", "link", "add", pair.HostTap, "type", "veth", "peer", "name", "vhpeer"), "ip link add veth");
        (int code, string output, string err) = Run.In(pair.HostNs, TimeSpan.FromSeconds(60), Run.Vop("run", "--config", pair.HostConfig));
        Assert.Equal(1, code);
        Assert.Contains($"link card0: tap {pair.HostTap}: TUNSETIFF failed: the name is taken", err + output);
        Assert.False(File.Exists(pair.Socket), "a failed start left its socket behind");
    }

    [Fact]
    public void MissingPrivilegeIsAClearError()
    {
        using var pair = new LinkPair();
        // The unprivileged user must be able to read the program wherever the checkout lives.
        string[] vop = Run.VopCopiedTo(Path.Combine(pair.Dir, "app"), "run", "--config", pair.HostConfig);
        (int code, string output, string err) = Run.In(pair.HostNs, TimeSpan.FromSeconds(60),
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "env", "HOME=/tmp", .. vop]);
        Assert.Equal(1, code);
        string all = (output + err).Trim();
        Assert.Contains($"vop: link card0: tap {pair.HostTap}: ", all);
        Assert.Contains("CAP_NET_ADMIN", all);
        Assert.Single(all.Split('\n'));
    }

    [Fact]
    public void DemoCheckRunsAndCleansUp()
    {
        Run.RequireRoot();
        (int code, string output, string err) = Run.In(null, TimeSpan.FromMinutes(3), Run.Vop("demo", "--check"));
        Assert.True(code == 0, output + err);
        Assert.Contains("demo_ping_ok=1", output);
        Assert.Contains("0% packet loss", output);
        Assert.DoesNotContain("vopd", Run.In(null, "ip", "netns", "list").Out);
    }
}
