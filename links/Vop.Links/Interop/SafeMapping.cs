using System.Runtime.InteropServices;
using Tmds.Linux;

namespace Vop.Links.Interop;

/// <summary>An mmap'ed range; keeps its length for munmap. Invalid when MAP_FAILED (-1) or null.</summary>
public sealed unsafe class SafeMapping : SafeHandle
{
    private readonly ulong _length;

    public SafeMapping(IntPtr address, ulong length)
        : base(new IntPtr(-1), ownsHandle: true)
    {
        _length = length;
        SetHandle(address);
    }

    public override bool IsInvalid => handle == new IntPtr(-1) || handle == IntPtr.Zero;

    public ulong Length => _length;

    public byte* Pointer => (byte*)handle;

    protected override bool ReleaseHandle() => LibC.munmap((void*)handle, (size_t)_length) == 0;
}
