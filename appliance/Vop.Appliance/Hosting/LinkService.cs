using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Vop.Appliance.Config;
using Vop.VirtioConsole;
using Vop.Links;
using Vop.Links.Devices;
using Vop.Links.Loopback;
using Vop.Links.Pci;
using Vop.Links.Supervision;
using Vop.Links.VhostUser;
using Vop.Links.Windows;
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
    private readonly LinkCounters _counters = new();

    /// <summary>Backends (TAPs, ports) and the link end in the order they were made; disposed last first.</summary>
    private readonly List<IDisposable> _owned = [];
    private CaptureStreamer? _capture;
    private string? _ntbProblem;
    private ILinkSupervisor? _supervisor;
    private static long s_generations;
    private bool _disposed;

    public LinkService(LinkConfig config, ILoggerFactory logs)
    {
        _config = config;
        _logs = logs;
        _log = logs.CreateLogger($"vop.link.{config.Name}");
    }

    public LinkConfig Config => _config;

    /// <summary>This run of the link, unique in the process (metrics drop a restarted link's old series by it).</summary>
    public long Generation { get; } = Interlocked.Increment(ref s_generations);

    /// <summary>Refusals, window repairs and contained faults of this link (metrics and status).</summary>
    public LinkCounters Counters => _counters;

    /// <summary>Streams the link's net frames to `vop capture` (through the control socket); null without a net device or before start.</summary>
    public CaptureStreamer? Capture => _capture;

    /// <summary>The link's supervisor, whatever its kind and role; null until <see cref="StartAsync"/> ran.</summary>
    public ILinkSupervisor? Supervisor => _supervisor;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            if (_config.Kind == LinkKind.VhostUser)
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
                _capture = new CaptureStreamer(rings, _log);
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
                NetDeviceEntry d => new NetDeviceBackend(d.Options, _log) { PumpSettings = _config.Pumps },
                ConsoleConfigEntry c => NewConsoleDevice(_config.Name, c),
                _ => throw new InvalidOperationException($"unknown device {entry.Name}"),
            };
            _owned.Add((IDisposable)backend);
            backends.Add(backend);
        }

        if (_config.WindowPath is string windowPath)
        {
            // pci/ntb: the window is a file both ends map; the device side creates it if needed.
            // With the ivshmem doorbell (vop in a guest whose driver side is another guest) the BAR's PCI
            // function is opened through VFIO, as on the driver side.
            PciLinkEnd mapped = OpenMapped(windowPath, _config.WindowOffset, _config.WindowSize, deviceSide: true, _config.Vectors, IvshmemFunction(windowPath), _config.Registers, NtbProblem);
            _owned.Add(mapped);
            var polled = new DeviceSideLink(_config.Name, mapped, backends, _log, pollPresence: true, _counters);
            _supervisor = polled;
            polled.Start();
            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(_config.Socket)!);
        var end = new LoopbackDeviceEnd(_config.Name, _config.Socket, _config.WindowSize, _config.Vectors, _log);
        _owned.Add(end);
        var side = new DeviceSideLink(_config.Name, end, backends, _log, counters: _counters);
        _supervisor = side;
        end.PeerChanged += _ => side.NotifyPeerChanged();
        end.Server.PeerRefused += () => _counters.Refused(LinkCounters.Refusal.ExtraClient);
        side.Start();
        end.Start();
    }

    /// <summary>A console device over its ports; the ports are closed again if the device cannot be made.</summary>
    private static ConsoleDeviceBackend NewConsoleDevice(string link, ConsoleConfigEntry c)
    {
        PortSet? ports = EndpointFactory.Create(link, c);
        try
        {
            var device = new ConsoleDeviceBackend(c.Name, [.. c.Ports.Select(p => p.Name)], ports);
            ports = null; // the device owns them
            return device;
        }
        finally
        {
            ports?.Dispose();
        }
    }

    /// <summary>A console driver over its ports; the ports are closed again if the driver cannot be made.</summary>
    private static ConsoleDriverBackend NewConsoleDriver(string link, ConsoleConfigEntry c)
    {
        PortSet? ports = EndpointFactory.Create(link, c);
        try
        {
            var driver = new ConsoleDriverBackend(c.Name, ports);
            ports = null; // the driver owns them
            return driver;
        }
        finally
        {
            ports?.Dispose();
        }
    }

    /// <summary>
    /// A pci/ntb link end over the window file (the device side creates it), with the PCI function
    /// <paramref name="vfioFunction"/> opened through VFIO when given; what was opened is closed again if the
    /// end cannot be made.
    /// </summary>
    private static PciLinkEnd OpenMapped(string path, ulong offset, ulong size, bool deviceSide, int vectors, string? vfioFunction, NtbRegisterFile? registers = null, Action<string?>? ntbProblem = null)
    {
        VfioDevice? vfio = null;
        SharedWindow? window = null;
        NtbRegisters? ntbRegisters = null;
        NtbNotifier? ntb = null;
        try
        {
            vfio = vfioFunction is null ? null : VfioDevice.Open(vfioFunction);
            window = SharedWindow.OpenFile(path, offset, size, create: deviceSide);
            ntbRegisters = registers is null ? null : NtbRegisters.Open(registers);
            ntb = ntbRegisters is null ? null : new NtbNotifier(ntbRegisters, deviceSide, vectors, size, ntbProblem);
            ntbRegisters = null; // the notifier owns them
            var end = new PciLinkEnd(window, deviceSide, vectors, vfio, ntb);
            window = null; // the end owns them all now
            vfio = null;
            ntb = null;
            return end;
        }
        finally
        {
            ntbRegisters?.Dispose();
            ntb?.Dispose();
            window?.Dispose();
            vfio?.Dispose();
        }
    }

    /// <summary>The PCI function (BDF) whose resource file <paramref name="path"/> is.</summary>
    private static string PciFunctionOf(string path) => Path.GetFileName(Path.GetDirectoryName(path)!);

    private string? IvshmemFunction(string path) => _config.Doorbell == DoorbellKind.Ivshmem ? PciFunctionOf(path) : null;

    /// <summary>
    /// The NTB peer's scratchpads stopped matching (a line) or match again (null): one log line and one
    /// refusal count per distinct problem, across the link ends a driver side opens while it retries.
    /// </summary>
    private void NtbProblem(string? problem)
    {
        lock (_owned)
        {
            if (problem == _ntbProblem)
            {
                return;
            }

            _ntbProblem = problem;
        }

        if (problem is null)
        {
            _log.LogInformation("link {Link}: the NTB peer's scratchpads match again", _config.Name);
            return;
        }

        _counters.Refused(LinkCounters.Refusal.BadScratchpad);
        _log.LogWarning("link {Link}: NTB peer refused: {Problem}", _config.Name, problem);
    }

    private void StartVhostUser()
    {
        var backend = new NetDeviceBackend(((NetDeviceEntry)_config.Devices[0]).Options, _log) { PumpSettings = _config.Pumps };
        _owned.Add(backend);
        var vhost = new VhostUserLink(_config.Name, _config.Socket, listen: !_config.VhostUserConnect, backend, _log);
        _supervisor = vhost;
        vhost.Start();
    }

    private void StartDriverSide()
    {
        var backends = new List<IDriverBackend>();
        foreach (DeviceEntry entry in _config.Devices)
        {
            IDriverBackend backend = entry switch
            {
                NetDeviceEntry d => new NetDriverBackend(new NetDriverOptions(d.Options.Name, d.Options.Tap, QueuePairs: d.Options.QueuePairs, Mode: d.Options.Mode), _log) { PumpSettings = _config.Pumps },
                ConsoleConfigEntry c => NewConsoleDriver(_config.Name, c),
                _ => throw new InvalidOperationException($"unknown device {entry.Name}"),
            };
            _owned.Add((IDisposable)backend);
            backends.Add(backend);
        }

        string socket = _config.Socket;
        int vectors = _config.Vectors;
        Func<CancellationToken, ILinkEnd> connect = _config.WindowPath is string windowPath
            ? cancel => ConnectMapped(windowPath, _config.WindowOffset, _config.WindowSize, vectors, _config.Doorbell == DoorbellKind.Ivshmem, cancel, _config.Registers, NtbProblem)
            : cancel => LoopbackDriverEnd.Connect(socket, vectors, cancel, _log);
        var driver = new DriverSideLink(_config.Name, connect, backends, _log, _counters);
        _supervisor = driver;
        driver.Start();
    }

    /// <summary>
    /// pci/ntb driver side: map the window and wait until the device side is running in it. With the
    /// ivshmem doorbell the BAR's PCI function (the path's directory) is opened through VFIO for its
    /// Doorbell register and MSI-X interrupts.
    /// </summary>
    private static PciLinkEnd ConnectMapped(string path, ulong offset, ulong size, int vectors, bool ivshmem, CancellationToken cancel, NtbRegisterFile? registers = null, Action<string?>? ntbProblem = null)
    {
        while (!File.Exists(path))
        {
            cancel.ThrowIfCancellationRequested();
            cancel.WaitHandle.WaitOne(100);
        }

        PciLinkEnd end = OpenMapped(path, offset, size, deviceSide: false, vectors, ivshmem ? PciFunctionOf(path) : null, registers, ntbProblem);
        try
        {
            while (!end.PeerAttached)
            {
                if (cancel.WaitHandle.WaitOne(50))
                {
                    cancel.ThrowIfCancellationRequested();
                }
            }
        }
        catch
        {
            end.Dispose();
            throw;
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
        if (_disposed)
        {
            return;
        }

        _disposed = true;

        // Capture, then the supervisor (stops pumps, resets devices), then link end, then TAPs.
        _capture?.Dispose();
        _supervisor?.Dispose();
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            _owned[i].Dispose();
        }

        _owned.Clear();

        // The link's socket directories (RunDir/LINK) go with their sockets; a directory someone else
        // put files in stays.
        foreach (string dir in _config.Devices.OfType<ConsoleConfigEntry>().Select(c => c.RunDir).Append(_config.RunDir).Distinct())
        {
            RunDirectory.RemoveIfEmpty(Path.Combine(dir, _config.Name));
        }
    }
}
