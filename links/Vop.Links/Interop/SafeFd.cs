using System.Runtime.InteropServices;
using Tmds.Linux;

namespace Vop.Links.Interop;

/// <summary>
/// An owned file descriptor. -1 (any negative value) is invalid; 0 is a valid fd. Close is never retried
/// on EINTR: Linux frees the fd regardless.
/// </summary>
public sealed class SafeFd : SafeHandle
{
    private const int Invalid = -1;

    /// <summary>An invalid handle, for a descriptor assigned later.</summary>
    public SafeFd()
        : base(Invalid, ownsHandle: true)
    {
    }

    public SafeFd(int fd, bool ownsHandle = true)
        : base(Invalid, ownsHandle)
    {
        SetHandle(fd);
    }

    public override bool IsInvalid => handle < 0;

    /// <summary>The raw descriptor; valid while this handle is alive.</summary>
    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => LibC.close((int)handle) == 0;
}
