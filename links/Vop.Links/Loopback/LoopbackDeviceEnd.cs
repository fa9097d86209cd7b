using Microsoft.Extensions.Logging;
using Vop.Links.Doorbells;
using Vop.Links.Ivshmem;
using Vop.Links.Windows;

namespace Vop.Links.Loopback;

/// <summary>
/// The device side of a loopback link: creates the window as a memfd and serves it, with eventfds,
/// over an ivshmem-protocol socket to exactly one client, the driver side (a vop, or a QEMU whose
/// ivshmem-doorbell device carries a guest's vop); further clients are refused while it is connected.
/// </summary>
public sealed class LoopbackDeviceEnd : ILinkEnd
{
    private readonly IvshmemServer _server;
    private readonly ForwardingDoorbell[] _toPeer;
    private IvshmemPeer? _driver;

    public LoopbackDeviceEnd(string name, string socketPath, ulong windowSize, int vectors, ILogger? log = null)
    {
        Window = SharedWindow.CreateMemfd($"vop-{name}", windowSize);
        _server = new IvshmemServer(socketPath, Window.Fd!, vectors, log, maxPeers: 1);
        _toPeer = new ForwardingDoorbell[vectors];
        for (int v = 0; v < vectors; v++)
        {
            _toPeer[v] = new ForwardingDoorbell();
        }

        _server.PeerConnected += OnConnected;
        _server.PeerDisconnected += OnDisconnected;
    }

    public SharedWindow Window { get; }

    public int VectorCount => _toPeer.Length;

    public bool PeerAttached => Volatile.Read(ref _driver) is not null;

    /// <summary>Peer id of the attached driver side, or -1.</summary>
    public int PeerId => Volatile.Read(ref _driver)?.Id ?? -1;

    public IvshmemServer Server => _server;

    /// <summary>Raised on the server thread when a driver attaches (true) or leaves (false).</summary>
    public event Action<bool>? PeerChanged;

    /// <summary>Starts serving; the window should be laid out before a peer can map it.</summary>
    public void Start() => _server.Start();

    public Doorbell PeerDoorbell(int vector) => _toPeer[vector];

    public EventFdDoorbell LocalDoorbell(int vector) => _server.LocalPeer.Vectors[vector];

    private void OnConnected(IvshmemPeer peer)
    {
        for (int v = 0; v < _toPeer.Length; v++)
        {
            _toPeer[v].Target = peer.Vectors[v];
        }

        Volatile.Write(ref _driver, peer);
        PeerChanged?.Invoke(true);
    }

    private void OnDisconnected(IvshmemPeer peer)
    {
        if (Volatile.Read(ref _driver) != peer)
        {
            return;
        }

        foreach (ForwardingDoorbell d in _toPeer)
        {
            d.Target = null;
        }

        Volatile.Write(ref _driver, null);
        PeerChanged?.Invoke(false);
    }

    public void Dispose()
    {
        _server.Dispose();
        Window.Dispose();
    }
}
