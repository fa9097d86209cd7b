using System.Diagnostics;

namespace Vop.Appliance.Demo;

/// <summary>Runs helper programs (ip, iperf3) and vop itself (the daemons), optionally inside a network namespace.</summary>
internal static class Shell
{
    /// <summary>How to start this very program again (apphost or `dotnet vop.dll`).</summary>
    public static string[] Self()
    {
        string process = Environment.ProcessPath ?? "dotnet";
        string dll = Path.Combine(AppContext.BaseDirectory, "vop.dll");
        return Path.GetFileNameWithoutExtension(process) == "dotnet" ? [process, dll] : [process];
    }

    /// <summary>
    /// How the user started vop, for commands the demo prints (copy-paste into a shell in the same directory):
    /// the ./vop script as they typed it (it exports VOP_LAUNCHER="$0"), `vop` when the program is the one
    /// PATH finds under that name, else the full path of the executable (and of vop.dll under dotnet).
    /// </summary>
    public static string Launcher()
    {
        string process = Environment.ProcessPath ?? "dotnet";
        bool underDotnet = Path.GetFileNameWithoutExtension(process) == "dotnet";
        string? script = Environment.GetEnvironmentVariable("VOP_LAUNCHER");
        if (underDotnet && !string.IsNullOrEmpty(script) && File.Exists(script))
        {
            // Trusted only under dotnet: a native vop started from a shell the script left VOP_LAUNCHER in is not the script.
            return SameFile(OnPath("vop"), script) ? "vop"
                : script.Contains('/', StringComparison.Ordinal) ? Quote(script)
                : "./" + Quote(script); // `bash vop demo`: a bare name that PATH would not find
        }

        if (!underDotnet)
        {
            return SameFile(OnPath("vop"), process) ? "vop" : Quote(process);
        }

        return string.Join(' ', Self().Select(Quote));
    }

    /// <summary>A word as a POSIX shell reads it back: as is when it holds only safe characters, else single-quoted.</summary>
    public static string Quote(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "/._-+=:,@%".Contains(c, StringComparison.Ordinal))
            ? word
            : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static string? OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);

    private static bool SameFile(string? a, string b)
    {
        if (a is null)
        {
            return false;
        }

        try
        {
            return Path.GetFullPath(new FileInfo(a).ResolveLinkTarget(true)?.FullName ?? a) == Path.GetFullPath(new FileInfo(b).ResolveLinkTarget(true)?.FullName ?? b);
        }
        catch (IOException)
        {
            return false;
        }
    }

    public static bool Exists(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin")
            .Split(':').Append("/usr/sbin").Append("/sbin")
            .Any(d => File.Exists(Path.Combine(d, program)));

    public static ProcessStartInfo Info(string? netns, IEnumerable<string> command)
    {
        var psi = new ProcessStartInfo(netns is null ? command.First() : "ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (netns is not null)
        {
            psi.ArgumentList.Add("netns");
            psi.ArgumentList.Add("exec");
            psi.ArgumentList.Add(netns);
            psi.ArgumentList.Add(command.First());
        }

        foreach (string a in command.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }

        return psi;
    }

    /// <summary>Runs to completion; returns exit code and combined output.</summary>
    public static (int Code, string Output) Run(string? netns, params string[] command) => Run(netns, TimeSpan.FromSeconds(120), command);

    public static (int Code, string Output) Run(string? netns, TimeSpan timeout, params string[] command)
    {
        using var p = Process.Start(Info(netns, command))!;
        Task<string> o = p.StandardOutput.ReadToEndAsync();
        Task<string> e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return (-1, o.Result + e.Result + $"\n(timed out after {timeout.TotalSeconds:F0}s)");
        }

        return (p.ExitCode, o.Result + e.Result);
    }

    /// <summary>Starts a long-running process with output going to <paramref name="logFile"/>.</summary>
    public static Process Start(string? netns, string logFile, params string[] command)
    {
        string[] inner = netns is null ? command : ["ip", "netns", "exec", netns, .. command];
        var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = false, RedirectStandardError = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec \"$@\" >>\"$0\" 2>&1");
        psi.ArgumentList.Add(logFile);
        foreach (string a in inner)
        {
            psi.ArgumentList.Add(a);
        }

        return Process.Start(psi)!;
    }

    /// <summary>SIGTERM, wait, then SIGKILL: only the process we started.</summary>
    public static void Stop(Process p, TimeSpan grace)
    {
        if (p.HasExited)
        {
            return;
        }

        _ = Tmds.Linux.LibC.kill(p.Id, 15);
        if (!p.WaitForExit(grace))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
    }
}
