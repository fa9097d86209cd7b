using System.Diagnostics;

namespace Vop.Appliance.Demo;

/// <summary>Runs helper programs (ip, ping, iperf3) and vop itself, optionally inside a network namespace.</summary>
internal static class Shell
{
    /// <summary>How to start this very program again (apphost or `dotnet vop.dll`).</summary>
    public static string[] Self()
    {
        string process = Environment.ProcessPath ?? "dotnet";
        string dll = Path.Combine(AppContext.BaseDirectory, "vop.dll");
        return Path.GetFileNameWithoutExtension(process) == "dotnet" ? [process, dll] : [process];
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
