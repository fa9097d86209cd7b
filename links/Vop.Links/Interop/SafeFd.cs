using Microsoft.Win32.SafeHandles;
using Tmds.Linux;

namespace Vop.Links.Interop;

/// <summary>An owned file descriptor. Close is never retried on EINTR: Linux frees the fd regardless.</summary>
public sealed class SafeFd : SafeHandleZeroOrMinusOneIsInvalid
{
    public SafeFd()
        : base(ownsHandle: true)
    {
        SetHandle(-1);
    }

    public SafeFd(int fd, bool ownsHandle = true)
        : base(ownsHandle)
    {
        SetHandle(fd);
    }

    public override bool IsInvalid => (int)handle < 0;

    /// <summary>The raw descriptor; valid while this handle is alive.</summary>
    public int Fd => (int)handle;

    /// <summary>Gives up ownership and returns the raw fd (used when handing an fd to another owner).</summary>
    public int Detach()
    {
        int fd = (int)handle;
        SetHandleAsInvalid();
        SetHandle(-1);
        return fd;
    }

    protected override bool ReleaseHandle() => LibC.close((int)handle) == 0;
}
