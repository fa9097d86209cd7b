using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Tmds.Linux;
using Vop.Links.Doorbells;
using Vop.Links.Interop;
using Vop.Links.Ivshmem;
using Vop.Links.Windows;

namespace Vop.Links.Loopback;

/// <summary>
/// The driver side of a loopback link: connects to the device side's ivshmem-protocol socket (retrying
/// until it is there), maps the shared memory it hands out and rings the device side (peer 0).
/// </summary>
public sealed class LoopbackDriverEnd : ILinkEnd
{
    private readonly IvshmemClient _client;
    private readonly ForwardingDoorbell[] _toPeer;

    private LoopbackDriverEnd(IvshmemClient client, SharedWindow window, ushort devicePeer)
    {
        _client = client;
        Window = window;
        DevicePeerId = devicePeer;
        _toPeer = new ForwardingDoorbell[client.VectorCount];
        for (int v = 0; v < _toPeer.Length; v++)
        {
            _toPeer[v] = new ForwardingDoorbell();
        }

        client.PeerChanged += OnPeerChanged;
        if (client.PeerVectors(devicePeer) is EventFdDoorbell[] vs)
        {
            OnPeerChanged(devicePeer, vs);
        }
    }

    public SharedWindow Window { get; }

    public ushort DevicePeerId { get; }

    public ushort OwnId => _client.Id;

    public int VectorCount => _toPeer.Length;

    public bool PeerAttached => _client.ServerAlive;

    public IvshmemClient Client => _client;

    /// <summary>Connects, waiting for the server as long as <paramref name="cancel"/> allows.</summary>
    public static unsafe LoopbackDriverEnd Connect(string socketPath, int vectors, CancellationToken cancel, ILogger? log = null, ushort devicePeer = 0)
    {
        IvshmemClient client = IvshmemClient.Connect(socketPath, vectors, cancel, log);
        try
        {
            SafeFd shm = client.SharedMemory!;
            long size = LibC.lseek(shm.Fd, 0, LibC.SEEK_END);
            Errno.Check(size, "lseek(shm fd)");
            SharedWindow window = SharedWindow.MapFd(shm, 0, (ulong)size, $"ivshmem:{socketPath}");
            LinkLog.ClientConnected(log ?? NullLogger.Instance, socketPath, client.Id, vectors, (ulong)size);
            return new LoopbackDriverEnd(client, window, devicePeer);
        }
        catch
        {
            client.SharedMemory?.Dispose();
            client.Dispose();
            throw;
        }
    }

    public Doorbell PeerDoorbell(int vector) => _toPeer[vector];

    public EventFdDoorbell LocalDoorbell(int vector) => _client.OwnVectors[vector];

    private void OnPeerChanged(ushort id, EventFdDoorbell[]? vectors)
    {
        if (id != DevicePeerId)
        {
            return;
        }

        for (int v = 0; v < _toPeer.Length; v++)
        {
            _toPeer[v].Target = vectors is not null && v < vectors.Length ? vectors[v] : null;
        }
    }

    public void Dispose()
    {
        _client.Dispose();
        Window.Dispose();
    }
}
