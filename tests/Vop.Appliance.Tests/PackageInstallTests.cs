using System.Diagnostics;
using System.Text.Json;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// The Debian package, installed for real: `dpkg -i` of the .deb named by VOP_DEB on this machine (the
/// unit, man page and completion land where the system looks for them, which a throwaway root would not
/// prove), the installed /usr/bin/vop through check-config and a loopback pair of two daemons in two
/// network namespaces with ping both ways, then `dpkg -r` (conffiles stay, the changed one changed) and
/// `dpkg --purge` (nothing of the package is left). A purge in finally guarantees the machine is left as it
/// was; a vop that dpkg already knows before the test is refused rather than replaced.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class PackageInstallTests
{
    private const string Vop = "/usr/bin/vop";
    private const string Examples = "/etc/vop/examples";

    [Fact]
    public void PackageInstallsRunsALinkAndPurgesClean()
    {
        Run.RequireRoot();
        string deb = DebFromEnvironment();
        string? before = Status();
        Assert.True(before is null, $"dpkg already knows a vop package ({before}); this test installs and purges vop: run `dpkg --purge vop` first if that one is disposable");

        // Every path the package ships, and which of them the machine had before (/usr/bin, /etc, ...).
        string[] paths = DebPaths(deb);
        HashSet<string> existed = [.. paths.Where(p => File.Exists(p) || Directory.Exists(p))];
        string[] conffiles = [.. paths.Where(p => p.StartsWith(Examples + "/", StringComparison.Ordinal) && p.EndsWith(".json", StringComparison.Ordinal))];
        Assert.True(conffiles.Length >= 2, $"{deb} ships no example configs under {Examples}:\n{string.Join('\n', paths)}");

        string id = $"vpk{Environment.ProcessId % 100000}";
        string dir = Directory.CreateTempSubdirectory("vop-pkg-").FullName;
        var daemons = new List<Process>();
        try
        {
            Dpkg("-i", deb);
            Assert.Equal("install ok installed", Status());

            // Installing starts, enables and activates nothing: no maintainer scripts, no unit links, no config.
            foreach (string script in new[] { "preinst", "postinst", "prerm", "postrm" })
            {
                Assert.False(File.Exists($"/var/lib/dpkg/info/vop.{script}"), $"the package has a {script}");
            }

            Assert.Empty(Directory.Exists("/etc/systemd/system") ? Directory.EnumerateFiles("/etc/systemd/system", "vop@*", SearchOption.AllDirectories) : []);
            Assert.DoesNotContain(Directory.EnumerateFiles("/etc/vop", "*.json"), f => !existed.Contains(f));
            Assert.DoesNotContain(Process.GetProcesses(), p => ExeOf(p.Id) == Vop);

            // The installed binary validates the installed examples, and refuses a bad config with exit code 2.
            foreach (string example in conffiles)
            {
                (int code, string output, string err) = Run.In(null, Vop, "check-config", example);
                Assert.True(code == 0 && output.Contains(": ok", StringComparison.Ordinal), $"{Vop} check-config {example}: {code} {output}{err}");
            }

            string bad = Path.Combine(dir, "bad.json");
            File.WriteAllText(bad, """{ "links": [ { "name": "Bad Name!", "kind": "loopback" } ] }""");
            (int badCode, _, string badErr) = Run.In(null, Vop, "check-config", bad);
            Assert.True(badCode == 2, $"check-config of a bad config exited {badCode}, not 2: {badErr}");

            // A loopback link between two installed daemons in two network namespaces.
            daemons.AddRange(StartPair(id, dir, out string hostIp, out string cardIp));
            Assert.True(Run.WaitUntil(() => Run.HasCarrier($"{id}-h", "vph0") && Run.HasCarrier($"{id}-c", "vpc0"), TimeSpan.FromSeconds(30)),
                $"no carrier on both TAPs within 30 s\n{Logs(dir)}");
            Run.Must(Run.In($"{id}-h", "ip", "addr", "add", hostIp + "/24", "dev", "vph0"), "host addr");
            Run.Must(Run.In($"{id}-c", "ip", "addr", "add", cardIp + "/24", "dev", "vpc0"), "card addr");
            foreach ((string ns, string to) in new[] { ($"{id}-h", cardIp), ($"{id}-c", hostIp) })
            {
                (int code, string output, string err) = Run.In(ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", to);
                Assert.True(code == 0, $"ping {to} from {ns}: {output}{err}\n{Logs(dir)}");
            }

            (int statusCode, string statusJson, string statusErr) = Run.In(null, Vop, "status", "-j", "--interval", "0.2", "--run-dir", Path.Combine(dir, "run"));
            Assert.True(statusCode == 0, $"{Vop} status -j: {statusErr}");
            using (JsonDocument status = JsonDocument.Parse(statusJson))
            {
                Assert.Equal(["card", "host"], status.RootElement.GetProperty("daemons").EnumerateArray().Select(d => d.GetProperty("daemon").GetString()));
            }

            foreach (Process d in daemons)
            {
                LinkPair.Kill(d, 15);
                Assert.True(d.ExitCode == 0, $"daemon {d.Id} exited {d.ExitCode} on SIGTERM\n{Logs(dir)}");
            }

            // Man page and completion are where man and bash-completion look.
            (int manCode, string manPath, string manErr) = Run.In(null, "man", "-w", "vop");
            Assert.True(manCode == 0 && manPath.Trim() == "/usr/share/man/man8/vop.8.gz", $"man -w vop: {manCode} {manPath}{manErr} (is man-db installed?)");
            (int renderCode, string page, string renderErr) = Run.In(null, "man", "-P", "cat", "vop");
            Assert.True(renderCode == 0 && page.Contains("check-config", StringComparison.Ordinal), $"man vop: {renderCode} {renderErr}");
            const string completion = "/usr/share/bash-completion/completions/vop";
            Assert.Contains("complete -F _vop vop", File.ReadAllText(completion));
            Run.Must(Run.In(null, "bash", "-n", completion), "bash -n on the completion");

            // Remove keeps the conffiles (the changed one as changed); purge removes everything of the package.
            string changed = Path.Combine(Examples, "host.json");
            string changedText = File.ReadAllText(changed).Replace("vop-card0", "vop-changed", StringComparison.Ordinal);
            File.WriteAllText(changed, changedText);
            Dpkg("-r", "vop");
            Assert.Equal("deinstall ok config-files", Status());
            Assert.False(File.Exists(Vop), "dpkg -r left /usr/bin/vop");
            Assert.All(paths.Where(p => !existed.Contains(p) && !conffiles.Contains(p) && !p.StartsWith("/etc/", StringComparison.Ordinal)),
                p => Assert.False(File.Exists(p), $"dpkg -r left {p}"));
            Assert.All(conffiles, c => Assert.True(File.Exists(c), $"dpkg -r removed the conffile {c}"));
            Assert.Equal(changedText, File.ReadAllText(changed));

            Dpkg("--purge", "vop");
            Assert.Null(Status());
            Assert.All(paths.Where(p => !existed.Contains(p)), p => Assert.False(File.Exists(p) || Directory.Exists(p), $"dpkg --purge left {p}"));
        }
        finally
        {
            foreach (Process d in daemons)
            {
                LinkPair.Kill(d, 15);
                d.Dispose();
            }

            foreach (string ns in new[] { $"{id}-h", $"{id}-c" })
            {
                Run.In(null, "ip", "netns", "del", ns);
            }

            if (Status() is not null)
            {
                Dpkg("--purge", "vop");
            }

            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The .deb under test: VOP_DEB, set by test.sh after deploy/deb/build-deb.sh.</summary>
    private static string DebFromEnvironment()
    {
        string? deb = Environment.GetEnvironmentVariable("VOP_DEB");
        if (string.IsNullOrEmpty(deb))
        {
            Assert.Fail("VOP_DEB is not set: build the package (deploy/deb/build-deb.sh) and export VOP_DEB=artifacts/vop_VERSION_amd64.deb; ./test.sh does both");
        }

        string full = Path.GetFullPath(deb);
        Assert.True(File.Exists(full), $"VOP_DEB={deb}: no such file ({full}); build it with deploy/deb/build-deb.sh");
        return full;
    }

    /// <summary>dpkg's status of vop ("install ok installed", "deinstall ok config-files"), or null when dpkg does not know it.</summary>
    private static string? Status()
    {
        (int code, string output, _) = Run.In(null, "dpkg-query", "-W", "-f=${Status}", "vop");
        return code == 0 && output.Trim().Length > 0 && output.Trim() != "unknown ok not-installed" ? output.Trim() : null;
    }

    /// <summary>Runs dpkg, waiting (up to 5 minutes) while another apt or dpkg holds its lock.</summary>
    private static void Dpkg(params string[] args)
    {
        long deadline = Environment.TickCount64 + 300_000;
        while (true)
        {
            (int code, string output, string err) = Run.In(null, ["dpkg", .. args]);
            if (code == 0)
            {
                return;
            }

            if (!err.Contains("lock", StringComparison.OrdinalIgnoreCase) || Environment.TickCount64 > deadline)
            {
                throw new InvalidOperationException($"dpkg {string.Join(' ', args)} failed ({code}): {output}{err}");
            }

            Thread.Sleep(2000);
        }
    }

    /// <summary>Absolute paths in the .deb's data (dpkg-deb -c), directories included, without trailing slash.</summary>
    private static string[] DebPaths(string deb)
    {
        (int code, string output, string err) = Run.In(null, "dpkg-deb", "-c", deb);
        Assert.True(code == 0, $"dpkg-deb -c {deb}: {err}");
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l[(l.IndexOf("./", StringComparison.Ordinal) + 1)..].TrimEnd('/'))
            .Where(p => p.Length > 0)];
    }

    private static string? ExeOf(int pid)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/exe").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Namespaces ID-h (device side, TAP vph0) and ID-c (driver side, TAP vpc0), each running the installed vop.</summary>
    private static Process[] StartPair(string id, string dir, out string hostIp, out string cardIp)
    {
        string subnet = $"10.198.{Environment.ProcessId % 250}";
        hostIp = subnet + ".1";
        cardIp = subnet + ".2";
        string socket = Path.Combine(dir, "link.sock");
        string runDir = Path.Combine(dir, "run");
        var host = new { runDir, links = new[] { new { name = "card0", kind = "loopback", role = "device", end = "host", socket, windowSize = "64M",
            devices = new[] { new { type = "net", name = "net0", tap = "vph0", mac = "52:54:00:0e:2e:09" } } } } };
        var card = new { runDir, links = new[] { new { name = "host", kind = "loopback", role = "driver", end = "card", socket,
            devices = new[] { new { type = "net", name = "net0", tap = "vpc0" } } } } };
        File.WriteAllText(Path.Combine(dir, "host.json"), JsonSerializer.Serialize(host));
        File.WriteAllText(Path.Combine(dir, "card.json"), JsonSerializer.Serialize(card));
        var started = new List<Process>();
        foreach ((string ns, string config) in new[] { ($"{id}-h", "host"), ($"{id}-c", "card") })
        {
            Run.Must(Run.In(null, "ip", "netns", "add", ns), "ip netns add");
            Run.Must(Run.In(null, "ip", "-n", ns, "link", "set", "lo", "up"), "lo up");
            started.Add(Run.Background(ns, Path.Combine(dir, config + ".log"), Vop, "run", "--config", Path.Combine(dir, config + ".json")));
        }

        return [.. started];
    }

    private static string Logs(string dir)
    {
        static string Read(string f) => File.Exists(f) ? File.ReadAllText(f) : "(no log)";
        return $"--- host.log\n{Read(Path.Combine(dir, "host.log"))}\n--- card.log\n{Read(Path.Combine(dir, "card.log"))}";
    }
}
