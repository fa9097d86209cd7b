using System.Diagnostics;
using System.Text;
using Tmds.Linux;
using Vop.Links.Interop;
using Vop.Links;

namespace Vop.VirtioConsole.Endpoints;

/// <summary>
/// The host console as a pseudo-terminal for screen and minicom, at a stable symlink (console.pty) that
/// survives card reboots. Card output is written to the master without ever blocking (dropped when no one
/// reads); what the terminal program types comes back through <c>input</c>. We hold the slave open
/// ourselves so the master never sees a hangup between users.
/// </summary>
public sealed unsafe class PtyMirror : IDisposable
{
    private readonly SafeFd _master;
    private readonly SafeFd _slave;
    private readonly string _link;
    private readonly Thread _reader;
    private volatile bool _disposed;

    public PtyMirror(string link, Action<byte[]> input)
    {
        int fd = PtyInterop.PosixOpenpt(PtyInterop.O_RDWR | PtyInterop.O_NOCTTY | PtyInterop.O_CLOEXEC);
        if (fd < 0 || PtyInterop.Grantpt(fd) != 0 || PtyInterop.Unlockpt(fd) != 0)
        {
            throw new IOException("cannot allocate a pseudo-terminal for the console");
        }

        _master = new SafeFd(fd);
        byte* name = stackalloc byte[128];
        _ = PtyInterop.PtsnameR(fd, name, 128);
        Path = Encoding.ASCII.GetString(name, new ReadOnlySpan<byte>(name, 128).IndexOf((byte)0));
        byte[] pathBytes = Encoding.ASCII.GetBytes(Path + "\0");
        fixed (byte* p = pathBytes)
        {
            _slave = new SafeFd(Errno.Check(LibC.open(p, LibC.O_RDWR | LibC.O_NOCTTY | LibC.O_CLOEXEC, 0), $"open({Path})"));
        }

        // Raw line discipline: bytes pass as they are, as on a serial line.
        using (Process? stty = Process.Start("stty", ["-F", Path, "raw", "-echo"]))
        {
            stty?.WaitForExit();
        }

        _ = LibC.fcntl(fd, LibC.F_SETFL, LibC.fcntl(fd, LibC.F_GETFL) | LibC.O_NONBLOCK);
        _link = link;
        if (File.Exists(link) || new FileInfo(link).LinkTarget is not null)
        {
            File.Delete(link);
        }

        File.CreateSymbolicLink(link, Path);
        _reader = Faults.StartGuarded("vop-console-pty", () => Read(input));
    }

    /// <summary>The slave device (/dev/pts/N); the symlink points here.</summary>
    public string Path { get; }

    /// <summary>Card output toward the terminal program; never blocks: what does not fit is dropped.</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            _ = LibC.write(_master.Fd, p, (size_t)data.Length);
        }
    }

    private void Read(Action<byte[]> input)
    {
        var buffer = new byte[4096];
        var pfd = new pollfd { fd = _master.Fd, events = LibC.POLLIN };
        while (!_disposed)
        {
            if (LibC.poll(&pfd, 1, 200) <= 0)
            {
                continue;
            }

            long n;
            fixed (byte* p = buffer)
            {
                n = LibC.read(_master.Fd, p, (size_t)buffer.Length);
            }

            if (n > 0)
            {
                input(buffer.AsSpan(0, (int)n).ToArray());
            }
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _reader.Join(1000);
        try
        {
            File.Delete(_link);
        }
        catch (IOException)
        {
        }

        _slave.Dispose();
        _master.Dispose();
    }
}
