using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Vop.Appliance.Config;
using Vop.VirtioConsole;
using Vop.Links;
using Vop.Links.Devices;
using Vop.Links.Loopback;
using Vop.Links.Pci;
using Vop.Links.VhostUser;
using Vop.Links.Windows;
using Vop.Netstack;
using Vop.Netstack.Device;
using Vop.Netstack.Driver;

namespace Vop.Appliance.Hosting;

/// <summary>
/// One link as a hosted service: opens the TAPs, then runs the device side (window, ivshmem server,
/// devices) or the driver side (client that reconnects by itself). Setup runs in StartAsync so a bad TAP
/// or socket stops the daemon at start with one clear line.
/// </summary>
public sealed class LinkService : IHostedService, IDisposable
{
    private readonly LinkConfig _config;
    private readonly ILoggerFactory _logs;
    private readonly ILogger _log;
    private readonly List<IDisposable> _owned = [];
    private readonly LinkCounters _counters = new();
    private DeviceSideLink? _deviceSide;
    private DriverSideLink? _driverSide;
    private VhostUserLink? _vhostUser;

    public LinkService(LinkConfig config, ILoggerFactory logs)
    {
        _config = config;
        _logs = logs;
        _log = logs.CreateLogger($"vop.link.{config.Name}");
    }

    public LinkConfig Config => _config;

    /// <summary>Refusals, window repairs and contained faults of this link (metrics and status).</summary>
    public LinkCounters Counters => _counters;

    public DeviceSideLink? DeviceSide => _deviceSide;

    public DriverSideLink? DriverSide => _driverSide;

    public VhostUserLink? VhostUser => _vhostUser;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            if (_config.Kind == "vhost-user")
            {
                StartVhostUser();
            }
            else if (_config.Role == LinkRole.Device)
            {
                StartDeviceSide();
            }
            else
            {
                StartDriverSide();
            }

            var rings = _owned.OfType<NetDeviceBackend>().Select(b => b.Capture)
                .Concat(_owned.OfType<NetDriverBackend>().Select(b => b.Capture)).ToList();
            if (rings.Count > 0)
            {
                _owned.Insert(0, new CaptureServer(Path.Combine(_config.RunDir, _config.Name, "capture.sock"), rings, _log));
            }
        }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidOperationException or InvalidDataException)
        {
            Dispose();
            throw new InvalidOperationException($"link {_config.Name}: {e.Message}", e);
        }

        return Task.CompletedTask;
    }

    private void StartDeviceSide()
    {
        var backends = new List<IDeviceBackend>();
        foreach (DeviceEntry entry in _config.Devices)
        {
            IDeviceBackend backend = entry switch
            {
                NetConfigEntry d => new NetDeviceBackend(new NetDeviceOptions(d.Name, d.Tap, d.Mac, d.Mtu, d.QueueSize), _log),
                ConsoleConfigEntry c => new ConsoleDeviceBackend(c.Name, [.. c.Ports.Select(p => p.Name)], EndpointFactory.Create(_config.Name, c)),
                _ => throw new InvalidOperationException($"unknown device {entry.Name}"),
            };
            _owned.Add((IDisposable)backend);
            backends.Add(backend);
        }

        if (_config.WindowPath is string windowPath)
        {
            // pci/ntb: the window is a file both ends map; the device side creates it if needed.
            var mapped = new PciLinkEnd(SharedWindow.OpenFile(windowPath, _config.WindowOffset, _config.WindowSize, create: true), deviceSide: true, _config.Vectors);
            _owned.Insert(0, mapped);
            _deviceSide = new DeviceSideLink(_config.Name, mapped, backends, _log, pollPresence: true, _counters);
            _deviceSide.Start();
            _owned.Insert(0, _deviceSide);
            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(_config.Socket)!);
        var end = new LoopbackDeviceEnd(_config.Name, _config.Socket, _config.WindowSize, _config.Vectors, _log);
        _owned.Insert(0, end);
        _deviceSide = new DeviceSideLink(_config.Name, end, backends, _log, counters: _counters);
        end.PeerChanged += _ => _deviceSide.NotifyPeerChanged();
        end.Server.PeerRefused += () => _counters.Refused(LinkCounters.Refusal.ExtraClient);
        _deviceSide.Start();
        end.Start();
        _owned.Insert(0, _deviceSide);
    }

    private void StartVhostUser()
    {
        var d = (NetConfigEntry)_config.Devices[0];
        var backend = new NetDeviceBackend(new NetDeviceOptions(d.Name, d.Tap, d.Mac, d.Mtu, d.QueueSize), _log);
        _owned.Add(backend);
        _vhostUser = new VhostUserLink(_config.Name, _config.Socket, listen: !_config.VhostUserConnect, backend, _log);
        _vhostUser.Start();
        _owned.Insert(0, _vhostUser);
    }

    private void StartDriverSide()
    {
        var backends = new List<IDriverBackend>();
        foreach (DeviceEntry entry in _config.Devices)
        {
            IDriverBackend backend = entry switch
            {
                NetConfigEntry d => new NetDriverBackend(new NetDriverOptions(d.Name, d.Tap), _log),
                ConsoleConfigEntry c => new ConsoleDriverBackend(c.Name, EndpointFactory.Create(_config.Name, c)),
                _ => throw new InvalidOperationException($"unknown device {entry.Name}"),
            };
            _owned.Add((IDisposable)backend);
            backends.Add(backend);
        }

        string socket = _config.Socket;
        int vectors = _config.Vectors;
        Func<CancellationToken, ILinkEnd> connect = _config.WindowPath is string windowPath
            ? cancel => ConnectMapped(windowPath, _config.WindowOffset, _config.WindowSize, vectors, _config.Doorbell == "ivshmem", cancel)
            : cancel => LoopbackDriverEnd.Connect(socket, vectors, cancel, _log);
        _driverSide = new DriverSideLink(_config.Name, connect, backends, _log, _counters);
        _driverSide.Start();
        _owned.Insert(0, _driverSide);
    }

    /// <summary>
    /// pci/ntb driver side: map the window and wait until the device side is running in it. With the
    /// ivshmem doorbell the BAR's PCI function (the path's directory) is opened through VFIO for its
    /// Doorbell register and MSI-X interrupts.
    /// </summary>
    private static PciLinkEnd ConnectMapped(string path, ulong offset, ulong size, int vectors, bool ivshmem, CancellationToken cancel)
    {
        while (!File.Exists(path))
        {
            cancel.ThrowIfCancellationRequested();
            cancel.WaitHandle.WaitOne(100);
        }

        VfioDevice? vfio = ivshmem ? VfioDevice.Open(Path.GetFileName(Path.GetDirectoryName(path)!)) : null;
        var end = new PciLinkEnd(SharedWindow.OpenFile(path, offset, size, create: false), deviceSide: false, vectors, vfio);
        while (!end.PeerAttached)
        {
            if (cancel.WaitHandle.WaitOne(50))
            {
                end.Dispose();
                cancel.ThrowIfCancellationRequested();
            }
        }

        return end;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        // Supervisor first (stops pumps, resets devices), then link end, then TAPs.
        foreach (IDisposable d in _owned)
        {
            d.Dispose();
        }

        _owned.Clear();
    }
}
