using Vop.Links.Doorbells;
using Vop.Links.Windows;

namespace Vop.Links.Pci;

/// <summary>
/// A doorbell that is a counter in the window: ringing increments it (release), the peer's poller sees
/// the change. One writer per counter (the ringing side), so no atomic read-modify-write is needed.
/// </summary>
public sealed class WindowDoorbell : Doorbell
{
    private readonly WindowAccessor _window;
    private readonly ulong _offset;

    public WindowDoorbell(in WindowAccessor window, ulong offset)
    {
        _window = window;
        _offset = offset;
    }

    public override void Ring() => _window.WriteU32Release(_offset, _window.ReadU32(_offset) + 1);
}
