using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Vop.Appliance.Config;
using Vop.Links;
using Vop.Links.Interop;

namespace Vop.Appliance.Hosting;

/// <summary>
/// The daemon's control socket, RUNDIR/control/NAME.sock (0600): what `vop status` and `vop capture` talk to
/// (<see cref="ControlProtocol"/>). A UNIX socket is reached by path from any network namespace, as virsh
/// reaches libvirtd, where the HTTP endpoint is only reachable inside the daemon's own namespace.
/// </summary>
public sealed class ControlServer : IHostedService, IDisposable
{
    private readonly string _path;
    private readonly string _runDir;
    private readonly ApplianceState _state;
    private readonly LinkSet _links;
    private readonly DaemonReload _reload;
    private readonly ILogger _log;
    private Socket? _listener;
    private Thread? _thread;
    private volatile bool _stopping;

    public ControlServer(ApplianceConfig config, ApplianceState state, LinkSet links, DaemonReload reload, ILogger log)
    {
        _runDir = config.RunDir;
        _path = RunDirectory.ControlSocket(config.RunDir, config.Name);
        _state = state;
        _links = links;
        _reload = reload;
        _log = log;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // A live socket at our path is another daemon of the same name: refuse rather than steal it.
        if (File.Exists(_path))
        {
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(_path));
                throw new InvalidOperationException($"another vop daemon already serves {_path} (a config of the same name running with the same runDir)");
            }
            catch (SocketException)
            {
                // Left by a daemon that stopped: PrivateSocket replaces it.
            }
        }

        try
        {
            _listener = PrivateSocket.Listen(_path, 16);
        }
        catch (Exception e) when (e is IOException or SocketException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"control socket {_path}: {e.Message}", e);
        }

        _thread = Faults.StartGuarded("vop-control", Serve);
        return Task.CompletedTask;
    }

    private void Serve()
    {
        while (!_stopping)
        {
            Socket client;
            try
            {
                client = _listener!.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                continue;
            }

            bool handedOff = false;
            try
            {
                // A client that connects and says nothing holds the loop at most this long.
                client.ReceiveTimeout = 2000;
                client.SendTimeout = 5000;
                handedOff = Handle(client);
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
            {
                _log.LogDebug("control client: {Error}", e.Message);
            }
            finally
            {
                if (!handedOff)
                {
                    client.Dispose();
                }
            }
        }
    }

    /// <summary>Answers one request; true when the socket went to a capture stream that now owns it.</summary>
    private bool Handle(Socket client)
    {
        string? request = ControlProtocol.ReadLine(client);
        string[] words = request?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
        switch (words)
        {
            case [ControlProtocol.Status]:
                ControlProtocol.WriteLine(client, ControlProtocol.Ok);
                client.Send(JsonSerializer.SerializeToUtf8Bytes(_state.Status(), StatusDocument.Json));
                return false;
            case [ControlProtocol.Reload]:
                string answer;
                try
                {
                    answer = ControlProtocol.Ok + "\n" + _reload.Reload();
                }
                catch (ConfigException e)
                {
                    answer = ControlProtocol.ConfigErrorPrefix + e.Message;
                }
                catch (InvalidOperationException e)
                {
                    answer = ControlProtocol.ErrorPrefix + e.Message;
                }

                ControlProtocol.WriteLine(client, answer);
                return false;
            case [ControlProtocol.Capture, string link]:
                IReadOnlyList<LinkService> links = _links.Current;
                LinkService? service = links.FirstOrDefault(l => l.Config.Name == link);
                string? refusal = service is null ? $"no link '{link}' here (links: {string.Join(", ", links.Select(l => l.Config.Name))})"
                    : service.Capture is null ? $"link '{link}' has no net device to capture"
                    : service.Capture.Busy ? $"link '{link}' is already being captured (one capture at a time)"
                    : null;
                if (refusal is not null)
                {
                    ControlProtocol.WriteLine(client, ControlProtocol.ErrorPrefix + refusal);
                    return false;
                }

                client.ReceiveTimeout = 0;
                ControlProtocol.WriteLine(client, ControlProtocol.Ok);
                return service!.Capture!.TryAttach(client);
            default:
                ControlProtocol.WriteLine(client, ControlProtocol.ErrorPrefix + $"unknown request '{request}' (status, capture LINK, reload)");
                return false;
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        _listener?.Dispose();
        _thread?.Join(3000);
        if (_listener is not null)
        {
            try
            {
                File.Delete(_path);
            }
            catch (IOException)
            {
            }

            RunDirectory.RemoveIfEmpty(RunDirectory.ControlDirectory(_runDir));
        }
    }
}
