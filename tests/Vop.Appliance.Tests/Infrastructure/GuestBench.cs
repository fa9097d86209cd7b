using System.Diagnostics;

namespace Vop.Appliance.Tests.Infrastructure;

/// <summary>
/// What a VM test needs on the host: QEMU present, a namespace (lo up) for vop's TAP with a /24 subnet
/// (.1 for the host TAP, .2 for the guest), a scratch directory, and the host vop started by PID. All of it
/// is removed on dispose.
/// </summary>
public sealed class GuestBench : IDisposable
{
    private static int s_counter;

    public GuestBench(string prefix, int subnetBase)
    {
        Run.RequireRoot();
        Assert.True(File.Exists("/usr/bin/qemu-system-x86_64"), "qemu-system-x86_64 is missing (test.sh installs qemu-system-x86)");
        int n = Interlocked.Increment(ref s_counter);
        Ns = $"{prefix}{Environment.ProcessId % 100000}x{n}";
        Subnet = $"10.{subnetBase}.{(Environment.ProcessId + n) % 250}";
        Dir = Path.Combine("/tmp", $"vop-e2e-{Ns}");
        Directory.CreateDirectory(Dir);
        Run.Must(Run.In(null, "ip", "netns", "add", Ns), "ip netns add");
        Run.Must(Run.In(null, "ip", "-n", Ns, "link", "set", "lo", "up"), "lo up");
    }

    public string Ns { get; }

    public string Subnet { get; }

    public string Dir { get; }

    public string HostIp => Subnet + ".1";

    public string GuestIp => Subnet + ".2";

    public Process? Vop { get; private set; }

    public string Log => File.Exists(Path.Combine(Dir, "vop.log")) ? File.ReadAllText(Path.Combine(Dir, "vop.log")) : "(no log)";

    /// <summary>Starts the host's vop in the namespace with <paramref name="config"/> (after the previous one ended); output goes to vop.log.</summary>
    public Process StartVop(string config)
    {
        if (Vop is { HasExited: true })
        {
            Vop.Dispose();
        }

        return Vop = Run.Background(Ns, Path.Combine(Dir, "vop.log"), Run.Vop("run", "--config", config));
    }

    public void Dispose()
    {
        LinkPair.Kill(Vop, 15);
        Vop?.Dispose();
        Run.In(null, "ip", "netns", "del", Ns);
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
