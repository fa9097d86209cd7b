using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Vop.Appliance.Tests.Infrastructure;

/// <summary>
/// An arm64 card in QEMU's aarch64 <c>virt</c> machine under TCG: Debian's stock arm64 kernel and a busybox
/// initramfs (tests/tools/guest/build-guest-arm64.sh) that runs the native arm64 vop from
/// <c>VOP_ARM64_BINARY</c>. A host directory (<see cref="Share"/>) is the guest's /vop over 9p: the
/// binary is copied there, the card's config goes there and its log comes back there (card.log). The
/// serial console is a root shell on QEMU's stdio that <see cref="Exec"/> drives. QEMU is ended by its PID.
/// </summary>
public sealed partial class Arm64Guest : IGuestShell, IDisposable
{
    private static readonly Lock s_imageGate = new();
    private static bool s_imageReady;
    private readonly Process _qemu;
    private readonly StringBuilder _console = new();
    private readonly Lock _gate = new();
    private int _commands;

    /// <param name="share">host directory seen as /vop in the guest (writable: the card's config and log)</param>
    /// <param name="devices">QEMU arguments for the devices (an ivshmem BAR)</param>
    /// <param name="configInShare">a config file name in <paramref name="share"/> that the guest's init runs `vop run` with, or null</param>
    /// <param name="consoleLog">where the serial console's transcript is written on dispose</param>
    public Arm64Guest(string share, IEnumerable<string> devices, string? configInShare, string consoleLog)
    {
        string binary = Binary;
        EnsureImage();
        Share = share;
        ConsoleLog = consoleLog;
        File.Copy(binary, Path.Combine(share, "vop"), overwrite: true);
        File.SetUnixFileMode(Path.Combine(share, "vop"), (UnixFileMode)0b111_101_101);
        var psi = new ProcessStartInfo("qemu-system-aarch64")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };

        // -cpu max: FEAT_RNG, so the guest's CRNG is ready at once. -smp 2: the card's pump and poller
        // threads and the guest's TCP endpoints run in parallel (MTTCG: one host thread per vCPU).
        string[] machine =
        [
            "-M", "virt", "-cpu", "max", "-smp", "2", "-m", "256", "-display", "none", "-serial", "stdio", "-monitor", "none", "-nic", "none",
            "-kernel", Path.Combine(ImageDir, "Image"), "-initrd", Path.Combine(ImageDir, "initrd.gz"),
            "-append", "console=ttyAMA0 quiet panic=-1" + (configInShare is null ? string.Empty : " vop_run=/vop/" + configInShare),
            "-virtfs", $"local,path={share},mount_tag=vop,security_model=none",
        ];
        foreach (string a in machine.Concat(devices))
        {
            psi.ArgumentList.Add(a);
        }

        _qemu = Process.Start(psi)!;
        _qemu.OutputDataReceived += (_, e) => Append(e.Data);
        _qemu.ErrorDataReceived += (_, e) => Append(e.Data is null ? null : "qemu: " + e.Data);
        _qemu.BeginOutputReadLine();
        _qemu.BeginErrorReadLine();
    }

    /// <summary>
    /// The native linux-arm64 vop (`VOP_ARM64_BINARY`): test.sh publishes it before the tests. Missing or
    /// not an aarch64 ELF is a loud failure, never a skip.
    /// </summary>
    public static string Binary
    {
        get
        {
            string? path = Environment.GetEnvironmentVariable("VOP_ARM64_BINARY");
            Assert.False(string.IsNullOrEmpty(path), "VOP_ARM64_BINARY is not set: publish the linux-arm64 vop first (deploy/publish.sh linux-arm64, as test.sh does) and export VOP_ARM64_BINARY=/path/to/linux-arm64/vop");
            Assert.True(File.Exists(path), $"VOP_ARM64_BINARY={path}: no such file (deploy/publish.sh linux-arm64 publishes it)");
            Span<byte> elf = stackalloc byte[20];
            using (FileStream f = File.OpenRead(path))
            {
                f.ReadExactly(elf);
            }

            // e_machine (offset 18, little-endian) 0xB7 = EM_AARCH64.
            bool aarch64 = elf[..4].SequenceEqual("\u007fELF"u8) && elf[18] == 0xB7 && elf[19] == 0;
            Assert.True(aarch64, $"VOP_ARM64_BINARY={path} is not an aarch64 ELF executable (the linux-arm64 publish output)");
            return path;
        }
    }

    public static string ImageDir => Environment.GetEnvironmentVariable("VOP_GUEST_ARM64_DIR") ?? "/var/cache/vop-guest-arm64";

    /// <summary>The guest's PCI address of <see cref="GuestVm.IvshmemPlain"/>'s device on the virt machine too.</summary>
    public static string IvshmemBar2 => $"/sys/bus/pci/devices/{GuestVm.IvshmemBdf}/resource2";

    public string Share { get; }

    public string ConsoleLog { get; }

    /// <summary>What the card's vop printed (init starts it with stdout and stderr in /vop/card.log).</summary>
    public string CardLog => File.Exists(Path.Combine(Share, "card.log")) ? File.ReadAllText(Path.Combine(Share, "card.log")) : "(no card.log)";

    public bool HasExited => _qemu.HasExited;

    public string Console
    {
        get
        {
            lock (_gate)
            {
                return _console.ToString();
            }
        }
    }

    /// <summary>Builds the arm64 kernel + initramfs once per machine (apt-get download; about 20 s).</summary>
    public static void EnsureImage()
    {
        lock (s_imageGate)
        {
            if (s_imageReady)
            {
                return;
            }

            string script = Path.Combine(RepoRoot(), "tests", "tools", "guest", "build-guest-arm64.sh");
            (int code, string o, string e) = Run.In(null, TimeSpan.FromMinutes(10), "bash", script, ImageDir);
            Assert.True(code == 0, $"building the arm64 guest failed ({code}): {o}{e}");
            s_imageReady = true;
        }
    }

    /// <summary>Waits for init's GUEST-UP line and returns it.</summary>
    public string WaitBoot(TimeSpan timeout)
    {
        Match m = Match.Empty;
        Assert.True(Run.WaitUntil(() => (m = GuestUpLine().Match(Console)).Success || _qemu.HasExited, timeout), $"arm64 guest did not boot:\n{Tail()}");
        if (_qemu.HasExited)
        {
            Assert.Fail($"QEMU exited ({_qemu.ExitCode}):\n{Tail()}");
        }

        return m.Value;
    }

    /// <summary>Runs a shell command in the guest; returns its exit code and what it printed.</summary>
    public (int Code, string Output) Exec(string command, TimeSpan timeout)
    {
        int n = ++_commands;
        int from;
        lock (_gate)
        {
            from = _console.Length;
        }

        _qemu.StandardInput.Write($"{command}; echo __VOP_DONE_{n}_rc=$?\n");
        _qemu.StandardInput.Flush();
        var done = new Regex($"__VOP_DONE_{n}_rc=(\\d+)");
        Match m = Match.Empty;
        bool finished = Run.WaitUntil(() => (m = done.Match(Console, from)).Success, timeout);
        Assert.True(finished, $"arm64 guest command timed out after {timeout}: {command}\n{Tail()}");
        return (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), Console[from..m.Index]);
    }

    public string Tail()
    {
        string c = Console;
        return c.Length > 4000 ? c[^4000..] : c;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            _console.Append(line).Append('\n');
        }
    }

    private static string RepoRoot()
    {
        string dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "vop.slnx")))
        {
            dir = Path.GetDirectoryName(dir) ?? throw new InvalidOperationException("vop.slnx not found above the test assembly");
        }

        return dir;
    }

    [GeneratedRegex("GUEST-UP [^\n]*")]
    private static partial Regex GuestUpLine();

    public void Dispose()
    {
        if (!_qemu.HasExited)
        {
            _qemu.Kill();
            _qemu.WaitForExit();
        }

        try
        {
            File.WriteAllText(ConsoleLog, Console);
        }
        catch (IOException)
        {
        }

        _qemu.Dispose();
    }
}
