using Tmds.Linux;
using Vop.Links;
using Vop.Links.Doorbells;
using Vop.Links.Interop;
using Vop.Links.Windows;

namespace Vop.TestSupport;

/// <summary>
/// Both ends of a link in one process: one memfd window mapped twice (as two processes would) and real
/// eventfds per vector and direction. For tests: both roles in one process.
/// </summary>
public sealed class InProcessLink : IDisposable
{
    private readonly EventFdDoorbell[] _toDevice;
    private readonly EventFdDoorbell[] _toDriver;

    public InProcessLink(ulong windowSize, int vectors = 4)
    {
        DeviceWindow = SharedWindow.CreateMemfd("vop-test", windowSize);
        int dup = Errno.Check(LibC.dup(DeviceWindow.Fd!.Fd), "dup(memfd)");
        DriverWindow = SharedWindow.MapFd(new SafeFd(dup), 0, windowSize, "memfd:vop-test (second mapping)");
        _toDevice = new EventFdDoorbell[vectors];
        _toDriver = new EventFdDoorbell[vectors];
        for (int v = 0; v < vectors; v++)
        {
            _toDevice[v] = new EventFdDoorbell();
            _toDriver[v] = new EventFdDoorbell();
        }

        Device = new End(DeviceWindow, _toDriver, _toDevice);
        Driver = new End(DriverWindow, _toDevice, _toDriver);
    }

    public SharedWindow DeviceWindow { get; }

    public SharedWindow DriverWindow { get; }

    public ILinkEnd Device { get; }

    public ILinkEnd Driver { get; }

    public void Dispose()
    {
        DeviceWindow.Dispose();
        DriverWindow.Dispose();
        foreach (EventFdDoorbell d in _toDevice.Concat(_toDriver))
        {
            d.Dispose();
        }
    }

    private sealed class End : ILinkEnd
    {
        private readonly EventFdDoorbell[] _peer;
        private readonly EventFdDoorbell[] _local;

        public End(SharedWindow window, EventFdDoorbell[] peer, EventFdDoorbell[] local)
        {
            Window = window;
            _peer = peer;
            _local = local;
        }

        public SharedWindow Window { get; }

        public int VectorCount => _local.Length;

        public bool PeerAttached => true;

        public Doorbell PeerDoorbell(int vector) => _peer[vector];

        public EventFdDoorbell LocalDoorbell(int vector) => _local[vector];

        public void Dispose()
        {
        }
    }
}
