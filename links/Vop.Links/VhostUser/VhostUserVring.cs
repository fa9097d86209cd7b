using Vop.Links.Doorbells;
using Vop.Links.Interop;

namespace Vop.Links.VhostUser;

/// <summary>What the front-end told us about one vring, kept across pump restarts of one connection.</summary>
internal sealed class VhostUserVring : IDisposable
{
    public ushort Size { get; set; }

    public bool HasAddresses { get; set; }

    /// <summary>Front-end virtual addresses (SET_VRING_ADDR; note the wire order desc, used, avail).</summary>
    public ulong DescUser { get; set; }

    public ulong UsedUser { get; set; }

    public ulong AvailUser { get; set; }

    /// <summary>Next avail index to pop: SET_VRING_BASE in, GET_VRING_BASE out.</summary>
    public ushort LastAvail { get; set; }

    /// <summary>Disabled until SET_VRING_ENABLE(1) once protocol features are negotiated (rings start disabled).</summary>
    public bool Enabled { get; set; }

    public EventFdDoorbell? Kick { get; private set; }

    public EventFdDoorbell? Call { get; private set; }

    /// <summary>What the queue holds: forwards to <see cref="Call"/>, so the call fd can change under a running pump.</summary>
    public ForwardingDoorbell CallForwarder { get; } = new();

    public EventFdDoorbell? Error { get; private set; }

    public void SetKick(SafeFd? fd) => Replace(Kick, Kick = Wrap(fd));

    /// <summary>
    /// A new call fd. The running pump may be inside Ring() on the old one, so the old one is parked in
    /// <paramref name="retired"/> and closed only once the pump has stopped (closing it now could let the
    /// fd number be reused and the pump write 8 bytes into some other file).
    /// </summary>
    public void SetCall(SafeFd? fd, List<EventFdDoorbell> retired)
    {
        if (Call is not null)
        {
            retired.Add(Call);
        }

        Call = Wrap(fd);
        CallForwarder.Target = Call;
    }

    public void SetError(SafeFd? fd) => Replace(Error, Error = Wrap(fd));

    /// <summary>GET_VRING_BASE stops the ring: it needs a new kick fd to start again.</summary>
    public void Stopped() => SetKick(null);

    public bool Ready(bool protocolFeatures) => Size != 0 && HasAddresses && Kick is not null && (Enabled || !protocolFeatures);

    private static EventFdDoorbell? Wrap(SafeFd? fd) => fd is null ? null : new EventFdDoorbell(fd);

    private static void Replace(EventFdDoorbell? old, EventFdDoorbell? now)
    {
        if (!ReferenceEquals(old, now))
        {
            old?.Dispose();
        }
    }

    public void Dispose()
    {
        SetKick(null);
        CallForwarder.Target = null;
        Call?.Dispose();
        Call = null;
        SetError(null);
    }
}
