using System.Text.RegularExpressions;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// Issue 13's acceptance, the README half: the shell commands README.md prints for a checkout (the host and
/// the card on one machine, console, status, metrics, capture, stopping) are read out of the README and
/// typed, exactly as printed, into one interactive bash in the checkout's root, as a reader pasting them
/// would. They use the README's own names (namespace card, TAP vop-card0, /run/vop, 10.0.7.0/24), so the
/// test refuses to start when any of them is taken, and removes whatever of them it made.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed partial class ReadmeCommandsTests
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(3);

    [Fact]
    public void EveryShellCommandOfTheReadmeWorksAsPrinted()
    {
        Run.RequireRoot();
        string root = Run.RepoRoot();
        string readme = File.ReadAllText(Path.Combine(root, "README.md"));
        List<string> setup = ShellBlock(readme, "Both on one machine");
        List<string> console = ShellBlock(readme, "## The card's console and SSH over it");
        List<string> watching = ShellBlock(readme, "## Watching it");
        Match stopping = StopCommandsSentence().Match(readme);
        Assert.True(stopping.Success, "README.md no longer says how to stop the two daemons");
        string[] stop = [stopping.Groups[1].Value, stopping.Groups[2].Value];

        // The README's fixed names must be free: this test uses them as a reader would.
        Assert.False(Run.In(null, "ip", "netns", "list").Out.Split('\n').Any(l => l.Split(' ')[0] == "card"), "a network namespace 'card' exists already; the README test needs it");
        Assert.False(Run.In(null, "ip", "link", "show", "vop-card0").Code == 0, "a link vop-card0 exists already; the README test needs it");
        Assert.False(File.Exists("/run/vop/card0.sock") || Directory.Exists("/run/vop/control"), "a vop daemon seems to run under /run/vop; the README test needs it");

        string pcap = Path.Combine(root, "card0.pcap");
        using var tmux = new Tmux("readme", root);
        const string shell = "main:0";
        int typed = 0;
        try
        {
            foreach (string line in setup)
            {
                Expect(tmux, shell, line, ref typed);
            }

            foreach (string line in watching)
            {
                Expect(tmux, shell, line, ref typed);
            }

            string screen = tmux.Screen(shell);
            Assert.Contains("daemon host (pid ", screen);
            Assert.Contains("daemon card (pid ", screen);
            Assert.Matches(@"vop_transmit_bytes_total\{link=""card0"",device=""net0"",queue=""rx0""\} [1-9]", screen);
            Assert.True(new FileInfo(pcap).Length > 24, "card0.pcap is empty");

            // The console: a login prompt from the card, Ctrl-] leaves; --readonly says so once.
            Assert.Equal(2, console.Count);
            tmux.Type(shell, "clear");
            tmux.Type(shell, console[0]);
            tmux.WaitFor(shell, EscapeLine(), CommandTimeout, console[0]);
            tmux.Keys(shell, "Enter");
            tmux.WaitFor(shell, new Regex("login: *$", RegexOptions.Multiline), CommandTimeout, "the card's login prompt");
            tmux.Keys(shell, "C-]");
            tmux.WaitForShell(shell, TimeSpan.FromSeconds(30), console[0]);
            tmux.Type(shell, "clear");
            tmux.Type(shell, console[1]);
            tmux.WaitFor(shell, new Regex("read-only \\(--readonly\\); what you type is not sent"), CommandTimeout, console[1]);
            tmux.Keys(shell, "C-]");
            tmux.WaitForShell(shell, TimeSpan.FromSeconds(30), console[1]);
            Assert.Single(Regex.Matches(tmux.Screen(shell), "read-only \\(--readonly\\)"));

            // Stopping as the README says: the daemons leave nothing of theirs in /run/vop.
            Expect(tmux, shell, stop[0], ref typed);
            Assert.True(Run.WaitUntil(() => !Directory.Exists("/run/vop/control"), TimeSpan.FromSeconds(30)),
                "the daemons left /run/vop/control: " + string.Join(", ", Directory.EnumerateFileSystemEntries("/run/vop", "*", SearchOption.AllDirectories)));
            Expect(tmux, shell, stop[1], ref typed);

            // The control socket goes first (the daemon stops its servers before its links); the links'
            // sockets and directories go as each link stops.
            Assert.True(
                Run.WaitUntil(() => !File.Exists("/run/vop/card0.sock") && !Directory.Exists("/run/vop/card0") && !Directory.Exists("/run/vop/host"), TimeSpan.FromSeconds(30)),
                "left in /run/vop: " + string.Join(", ", Directory.EnumerateFileSystemEntries("/run/vop", "*", SearchOption.AllDirectories)));
        }
        finally
        {
            // Whatever the README's commands left when the test failed half way: the jobs of the tmux shell
            // go with its server (SIGHUP); the namespace and the capture file are removed here.
            tmux.Type(shell, "kill %1 %2 2>/dev/null");
            Thread.Sleep(2000);
            tmux.Dispose();
            Run.In(null, "ip", "netns", "del", "card");
            File.Delete(pcap);
        }
    }

    /// <summary>Types a command exactly as printed, then asks the shell for its exit status; asserts 0.</summary>
    private static void Expect(Tmux tmux, string shell, string line, ref int typed)
    {
        typed++;
        tmux.Type(shell, line);
        tmux.Type(shell, $"echo \"readme-step-{typed}-rc=$?\"");
        Match m = tmux.WaitFor(shell, new Regex($"^readme-step-{typed}-rc=(\\d+)$", RegexOptions.Multiline), CommandTimeout, line);
        Assert.True(m.Groups[1].Value == "0", $"`{line}` exited {m.Groups[1].Value}; screen:\n{tmux.Screen(shell)}");
    }

    /// <summary>The command lines of the first ```sh block after <paramref name="heading"/>.</summary>
    private static List<string> ShellBlock(string readme, string heading)
    {
        int at = readme.IndexOf(heading, StringComparison.Ordinal);
        Assert.True(at >= 0, $"README.md has no '{heading}'");
        int start = readme.IndexOf("```sh\n", at, StringComparison.Ordinal) + "```sh\n".Length;
        int end = readme.IndexOf("```", start, StringComparison.Ordinal);
        return [.. readme[start..end].Split('\n').Where(l => l.Trim().Length > 0)];
    }

    [GeneratedRegex(@"Stop the two daemons above with `([^`]+)`, then `([^`]+)`")]
    private static partial Regex StopCommandsSentence();

    [GeneratedRegex(@"Escape character is \^\]")]
    private static partial Regex EscapeLine();
}
