using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Vop.Appliance.Tests.Infrastructure;

/// <summary>
/// A tmux server of its own (-L, a unique socket name) for tests that type into terminals as a user would:
/// windows run `bash --norc` in a given directory; keys are typed, screens read back (wrapped lines joined).
/// Dispose kills this server only, with everything still running in its windows.
/// </summary>
public sealed class Tmux : IDisposable
{
    private readonly string _socket;

    public Tmux(string prefix, string cwd)
    {
        if (!File.Exists("/usr/bin/tmux") && !File.Exists("/bin/tmux"))
        {
            Assert.Fail("tmux is missing (./test.sh installs it: apt-get install tmux)");
        }

        _socket = $"{prefix}-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40];
        Cwd = cwd;
        Must("new-session", "-d", "-s", "main", "-x", "400", "-y", "100", "-c", cwd, "bash --noprofile --norc");
        Must("set-option", "-g", "history-limit", "20000");
    }

    public string Cwd { get; }

    /// <summary>A new window running an interactive bash in <see cref="Cwd"/>; its target name.</summary>
    public string Window(string name)
    {
        Must("new-window", "-d", "-n", name, "-c", Cwd, "bash --noprofile --norc");
        return $"main:{name}";
    }

    /// <summary>Types <paramref name="text"/> literally, then Enter.</summary>
    public void Type(string target, string text)
    {
        Must("send-keys", "-t", target, "-l", text);
        Must("send-keys", "-t", target, "Enter");
    }

    /// <summary>Sends tmux key names (C-c, C-], Enter).</summary>
    public void Keys(string target, params string[] keys) => Must(["send-keys", "-t", target, .. keys]);

    /// <summary>The window's whole screen and history, wrapped lines joined, trailing blanks trimmed.</summary>
    public string Screen(string target)
    {
        (int code, string output, string err) = Run.In(null, TimeSpan.FromSeconds(20), Args("capture-pane", "-p", "-J", "-S", "-20000", "-t", target));
        return code == 0 ? string.Join('\n', output.Split('\n').Select(l => l.TrimEnd())) : $"(capture-pane failed: {err})";
    }

    /// <summary>Waits until the screen matches; fails with the screen when it does not within <paramref name="timeout"/>.</summary>
    public Match WaitFor(string target, Regex pattern, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        string screen;
        do
        {
            screen = Screen(target);
            Match m = pattern.Match(screen);
            if (m.Success)
            {
                return m;
            }

            Thread.Sleep(200);
        }
        while (sw.Elapsed < timeout);

        Assert.Fail($"{what}: no /{pattern}/ in {target} within {timeout.TotalSeconds:F0}s; screen:\n{screen}");
        return null!;
    }

    /// <summary>Waits until the window's foreground program is its bash again (what ran in it has ended).</summary>
    public void WaitForShell(string target, TimeSpan timeout, string what)
    {
        string current = string.Empty;
        bool back = Run.WaitUntil(
            () => (current = Run.In(null, TimeSpan.FromSeconds(20), Args("display-message", "-p", "-t", target, "#{pane_current_command}")).Out.Trim()) == "bash",
            timeout);
        if (!back)
        {
            Assert.Fail($"{what}: {current} still runs in {target} after {timeout.TotalSeconds:F0}s; screen:\n{Screen(target)}");
        }
    }

    public void Dispose() => Run.In(null, TimeSpan.FromSeconds(20), Args("kill-server"));

    private string[] Args(params string[] args) => ["tmux", "-L", _socket, .. args];

    private void Must(params string[] args) => Run.Must(Run.In(null, TimeSpan.FromSeconds(20), Args(args)), "tmux " + string.Join(' ', args));
}
