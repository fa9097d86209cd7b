using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Vop.Appliance.Tests.Infrastructure;

/// <summary>
/// A QEMU guest under TCG: Debian's stock kernel and drivers, a busybox initramfs (tests/tools/guest),
/// 256 MiB of shared memfd RAM, and the devices a test asks for (a vhost-user NIC, an ivshmem BAR, the
/// host's root over 9p). Its serial console is a root shell on QEMU's stdio that <see cref="Exec"/>
/// drives. QEMU is ended by its PID on dispose.
/// </summary>
public sealed partial class GuestVm : IGuestShell, IDisposable
{
    private static readonly Lock s_imageGate = new();
    private static bool s_imageReady;
    private readonly Process _qemu;
    private readonly StringBuilder _console = new();
    private readonly Lock _gate = new();
    private int _commands;
    private int _boots;

    // iommu: q35 with an emulated intel-iommu, so the guest can bind a device to vfio-pci.
    public GuestVm(IEnumerable<string> devices, string append, string consoleLog, bool iommu = false)
    {
        EnsureImage();
        ConsoleLog = consoleLog;
        var psi = new ProcessStartInfo("qemu-system-x86_64")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };

        // No -no-reboot: a guest reboot stays in this QEMU and must renegotiate with vop.
        string[] machine =
        [
            "-accel", "tcg", "-cpu", "max", "-m", "256", "-display", "none", "-serial", "stdio", "-monitor", "none", "-nic", "none",
            "-kernel", Path.Combine(ImageDir, "vmlinux"), "-initrd", Path.Combine(ImageDir, "initrd.gz"),
            "-append", $"console=ttyS0 quiet panic=-1 {(iommu ? "intel_iommu=on " : string.Empty)}{append}",
            "-object", "memory-backend-memfd,id=mem,size=256M,share=on", "-machine", iommu ? "q35,memory-backend=mem" : "memory-backend=mem",
            .. iommu ? new[] { "-device", "intel-iommu,intremap=on" } : [],
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
    /// A virtio-net-pci NIC served by the vhost-user back-end at <paramref name="socket"/>. vectors=0 (INTx):
    /// QEMU 7.2 under TCG crashes in msix_set_vector_notifiers once a vhost-user NIC's driver starts with
    /// MSI-X (reference/peers-and-lab.md, 4b). reconnect=1: QEMU comes back to a restarted back-end by itself.
    /// </summary>
    /// With <paramref name="queues"/> &gt; 1: queues=N on the netdev and mq=on on the device (QEMU keeps the control
    /// queue and turns the guest's VQ_PAIRS_SET into SET_VRING_ENABLE per pair; still INTx, for the crash above).
    public static string[] VhostUserNic(string socket, int queues = 1) => queues == 1
        ? ["-chardev", $"socket,id=vh,path={socket},reconnect=1", "-netdev", "vhost-user,id=n0,chardev=vh", "-device", "virtio-net-pci,netdev=n0,vectors=0"]
        : ["-chardev", $"socket,id=vh,path={socket},reconnect=1", "-netdev", $"vhost-user,id=n0,chardev=vh,queues={queues}", "-device", "virtio-net-pci,netdev=n0,vectors=0,mq=on"];

    /// <summary>An ivshmem-plain BAR2 backed by <paramref name="file"/> at PCI slot 5 (guest BDF 0000:00:05.0).</summary>
    public static string[] IvshmemPlain(string file, string size) =>
        ["-object", $"memory-backend-file,id=ivm,size={size},share=on,mem-path={file}", "-device", "ivshmem-plain,memdev=ivm,addr=0x5"];

    public const string IvshmemBdf = "0000:00:05.0";

    /// <summary>An ivshmem-doorbell device at PCI slot 5 joined to the ivshmem server at <paramref name="socket"/>.</summary>
    public static string[] IvshmemDoorbell(string socket, int vectors) =>
        ["-chardev", $"socket,id=ivs,path={socket}", "-device", $"ivshmem-doorbell,chardev=ivs,vectors={vectors},addr=0x5"];

    /// <summary>The host's / over 9p, read-only (QEMU enforces it): the guest's init mounts it at /mnt for chroot.</summary>
    public static string[] HostRoot() =>
        ["-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"];

    public static string ImageDir => Environment.GetEnvironmentVariable("VOP_GUEST_DIR") ?? "/var/cache/vop-guest";

    public string ConsoleLog { get; }

    public int Pid => _qemu.Id;

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

    /// <summary>Builds the kernel + initramfs once per machine (apt-get download; about 5 s).</summary>
    public static void EnsureImage()
    {
        lock (s_imageGate)
        {
            if (s_imageReady)
            {
                return;
            }

            string script = Path.Combine(RepoRoot(), "tests", "tools", "guest", "build-guest.sh");
            (int code, string o, string e) = Run.In(null, TimeSpan.FromMinutes(5), "bash", script, ImageDir);
            Assert.True(code == 0, $"building the test guest failed ({code}): {o}{e}");
            s_imageReady = true;
        }
    }

    /// <summary>Waits for the init script's GUEST-UP line of boot number <c>n</c> (1 = first boot) and returns it.</summary>
    public string WaitBoot(TimeSpan timeout)
    {
        int want = ++_boots;
        Assert.True(Run.WaitUntil(() => GuestUp().Count >= want || _qemu.HasExited, timeout), $"guest boot {want} did not finish:\n{Tail()}");
        if (_qemu.HasExited)
        {
            Assert.Fail($"QEMU exited ({_qemu.ExitCode}):\n{Tail()}");
        }

        return GuestUp()[want - 1].Value;
    }

    /// <summary>Types a line at the guest's shell without waiting (e.g. reboot).</summary>
    public void Send(string line)
    {
        _qemu.StandardInput.Write(line + "\n");
        _qemu.StandardInput.Flush();
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
        Assert.True(finished, $"guest command timed out after {timeout}: {command}\n{Tail()}");
        string output = Console[from..m.Index];
        return (int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), output);
    }

    private List<Match> GuestUp() => [.. GuestUpLine().Matches(Console).Cast<Match>()];

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

    /// <summary>SIGKILL, as a crashing or killed QEMU.</summary>
    public void Kill()
    {
        if (!_qemu.HasExited)
        {
            _qemu.Kill();
            _qemu.WaitForExit();
        }
    }

    public void Dispose()
    {
        Kill();
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
