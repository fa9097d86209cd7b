using System.Diagnostics;

namespace Vop.Appliance.Tests.Infrastructure;

/// <summary>Runs programs for the end-to-end tests, optionally inside a network namespace.</summary>
public static class Run
{
    /// <summary>The checkout's root (vop.slnx and the ./vop script), above the test assembly.</summary>
    public static string RepoRoot()
    {
        string dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "vop.slnx")) || !File.Exists(Path.Combine(dir, "vop")))
        {
            dir = Path.GetDirectoryName(dir) ?? throw new InvalidOperationException("the checkout's root (vop.slnx, ./vop) not found above the test assembly");
        }

        return dir;
    }

    public static string VopDll => Path.Combine(AppContext.BaseDirectory, "vop.dll");

    public static string Dotnet => Environment.ProcessPath is string p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";

    /// <summary>
    /// The Native AOT vop under test when the environment names it (VOP_BINARY=/abs/path, as printed by
    /// deploy/publish.sh), else null: the JIT build beside the tests (dotnet vop.dll).
    /// </summary>
    public static string? VopBinary { get; } = NativeVop();

    /// <summary>What vop's processes are called (/proc/PID/comm, Process.ProcessName): the native binary's name, or dotnet.</summary>
    public static string VopProcessName => VopBinary is string b ? Path.GetFileName(b) : "dotnet";

    /// <summary>A vop command line: the native binary, or dotnet and the JIT build's vop.dll.</summary>
    public static string[] Vop(params string[] args) => VopBinary is string b ? [b, .. args] : [Dotnet, VopDll, .. args];

    /// <summary>
    /// A tests/tools/Vop.NetProbe command line (tcp-sink, tcp-source, ping, http-get): the test traffic that
    /// runs inside a namespace beside vop. Always the JIT build beside the tests; it is not part of vop.
    /// </summary>
    public static string[] NetProbe(params string[] args) => [Dotnet, Path.Combine(AppContext.BaseDirectory, "Vop.NetProbe.dll"), .. args];

    /// <summary>
    /// Copies the vop under test into <paramref name="dir"/> (the native binary, or vop.dll with every
    /// assembly and json beside it) and returns its command line, for a user who may not read the checkout.
    /// </summary>
    public static string[] VopCopiedTo(string dir, params string[] args)
    {
        Directory.CreateDirectory(dir);
        if (VopBinary is string b)
        {
            string to = Path.Combine(dir, Path.GetFileName(b));
            File.Copy(b, to); // keeps its mode (rwxr-xr-x)
            return [to, .. args];
        }

        foreach (string f in Directory.EnumerateFiles(AppContext.BaseDirectory, "*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".dll", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal)))
        {
            string to = Path.Combine(dir, Path.GetRelativePath(AppContext.BaseDirectory, f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }

        return [Dotnet, Path.Combine(dir, "vop.dll"), .. args];
    }

    private static string? NativeVop()
    {
        string? b = Environment.GetEnvironmentVariable("VOP_BINARY");
        if (string.IsNullOrEmpty(b))
        {
            return null;
        }

        if (!Path.IsPathFullyQualified(b) || !File.Exists(b))
        {
            throw new InvalidOperationException($"VOP_BINARY={b}: not an absolute path to the native vop (deploy/publish.sh linux-x64 prints it)");
        }

        return b;
    }

    public static (int Code, string Out, string Err) In(string? netns, params string[] command) => In(netns, TimeSpan.FromSeconds(120), command);

    public static (int Code, string Out, string Err) In(string? netns, TimeSpan timeout, params string[] command) => Collect(Info(netns, command), timeout);

    /// <summary>As <see cref="In(string?, TimeSpan, string[])"/> in the root namespace, with <paramref name="directory"/> as the working directory.</summary>
    public static (int Code, string Out, string Err) InDirectory(string directory, TimeSpan timeout, params string[] command)
    {
        ProcessStartInfo psi = Info(null, command);
        psi.WorkingDirectory = directory;
        return Collect(psi, timeout);
    }

    private static (int Code, string Out, string Err) Collect(ProcessStartInfo psi, TimeSpan timeout)
    {
        using var p = Process.Start(psi)!;
        Task<string> o = p.StandardOutput.ReadToEndAsync();
        Task<string> e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return (-1, o.Result, e.Result + $"\ntimed out after {timeout}");
        }

        return (p.ExitCode, o.Result, e.Result);
    }

    public static ProcessStartInfo Info(string? netns, string[] command)
    {
        string[] full = netns is null ? command : ["ip", "netns", "exec", netns, .. command];
        var psi = new ProcessStartInfo(full[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in full.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }

        return psi;
    }

    /// <summary>Starts a background process with stdout+stderr appended to a log file.</summary>
    public static Process Background(string? netns, string log, params string[] command)
    {
        string[] full = netns is null ? command : ["ip", "netns", "exec", netns, .. command];
        var psi = new ProcessStartInfo("/bin/sh");
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec \"$@\" >>\"$0\" 2>&1");
        psi.ArgumentList.Add(log);
        foreach (string a in full)
        {
            psi.ArgumentList.Add(a);
        }

        return Process.Start(psi)!;
    }

    public static void Must((int Code, string Out, string Err) r, string what)
    {
        if (r.Code != 0)
        {
            throw new InvalidOperationException($"{what} failed ({r.Code}): {r.Out}{r.Err}");
        }
    }

    /// <summary>True when <paramref name="tap"/> in <paramref name="netns"/> exists and has carrier (LOWER_UP, not NO-CARRIER).</summary>
    public static bool HasCarrier(string netns, string tap)
    {
        (int code, string output, _) = In(netns, "ip", "link", "show", tap);
        return code == 0 && output.Contains("LOWER_UP", StringComparison.Ordinal) && !output.Contains("NO-CARRIER", StringComparison.Ordinal);
    }

    public static bool IsRoot => Tmds.Linux.LibC.geteuid() == 0;

    /// <summary>End-to-end tests need root; say so loudly instead of skipping into green.</summary>
    public static void RequireRoot()
    {
        if (!IsRoot)
        {
            Assert.Fail("this end-to-end test needs root (network namespaces, TAP devices): run ./test.sh as root");
        }
    }

    public static bool WaitUntil(Func<bool> condition, TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (Environment.TickCount64 < deadline)
        {
            if (condition())
            {
                return true;
            }

            Thread.Sleep(100);
        }

        return condition();
    }
}
