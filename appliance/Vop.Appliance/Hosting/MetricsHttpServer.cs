using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Vop.Metrics;

namespace Vop.Appliance.Hosting;

/// <summary>
/// The daemon's HTTP endpoint (HttpListener, no ASP.NET): <c>/metrics</c> in the Prometheus text format,
/// <c>/status.json</c> (the status document), and a landing page at <c>/</c>. Default 127.0.0.1:9465; none
/// when metrics.listen is "off". A reload may move it (<see cref="Rebind"/>).
/// </summary>
public sealed class MetricsHttpServer : IHostedService, IDisposable
{
    private readonly ApplianceState _state;
    private readonly MetricsExporter _exporter;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private string? _listen;
    private HttpListener? _http;
    private Task? _loop;

    public MetricsHttpServer(string? listen, ApplianceState state, ILogger log)
    {
        _listen = listen;
        _state = state;
        _log = log;
        _exporter = new MetricsExporter(state.Snapshot);
    }

    public string? Listen => _listen;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            (_http, _loop) = _listen is null ? (null, null) : Open(_listen);
        }

        return Task.CompletedTask;
    }

    /// <summary>Listens on <paramref name="listen"/> instead (null: nowhere); when it cannot, keeps the old address and throws.</summary>
    public void Rebind(string? listen)
    {
        lock (_gate)
        {
            if (listen == _listen)
            {
                return;
            }

            // The old listener goes first: the new address may be the same port on another address.
            Close(_http, _loop);
            try
            {
                (_http, _loop) = listen is null ? (null, null) : Open(listen);
                _listen = listen;
            }
            catch (InvalidOperationException)
            {
                (_http, _loop) = _listen is null ? (null, null) : Open(_listen);
                throw;
            }
        }
    }

    private (HttpListener, Task) Open(string listen)
    {
        IPEndPoint ep = IPEndPoint.Parse(listen);
        string host = ep.Address.Equals(IPAddress.Any) ? "+" : ep.Address.ToString();
        var http = new HttpListener();
        http.Prefixes.Add($"http://{host}:{ep.Port}/");
        try
        {
            http.Start();
        }
        catch (HttpListenerException e)
        {
            Close(http, null);
            throw new InvalidOperationException($"metrics.listen {listen}: {e.Message}", e);
        }

        return (http, Task.Run(() => Serve(http), CancellationToken.None));
    }

    private async Task Serve(HttpListener http)
    {
        while (http.IsListening)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await http.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            try
            {
                await Handle(ctx).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or IOException)
            {
                _log.LogDebug("metrics request failed: {Error}", e.Message);
            }
            finally
            {
                ctx.Response.Close();
            }
        }
    }

    private async Task Handle(HttpListenerContext ctx)
    {
        string path = ctx.Request.Url?.AbsolutePath ?? "/";
        HttpListenerResponse r = ctx.Response;
        switch (path)
        {
            case "/metrics":
                r.ContentType = "text/plain; version=0.0.4; charset=utf-8";
                await _exporter.WriteAsync(r.OutputStream, CancellationToken.None).ConfigureAwait(false);
                break;
            case "/status.json":
                r.ContentType = "application/json";
                await JsonSerializer.SerializeAsync(r.OutputStream, _state.Status(), StatusDocument.Json).ConfigureAwait(false);
                break;
            case "/":
                r.ContentType = "text/html; charset=utf-8";
                byte[] page = Encoding.UTF8.GetBytes("<html><head><title>vop</title></head><body><h1>vop</h1><p>virtio over a shared window</p><ul><li><a href=\"/metrics\">/metrics</a> (Prometheus)</li><li><a href=\"/status.json\">/status.json</a> (vop status -j)</li></ul></body></html>");
                await r.OutputStream.WriteAsync(page).ConfigureAwait(false);
                break;
            default:
                r.StatusCode = 404;
                break;
        }
    }

    private static void Close(HttpListener? http, Task? loop)
    {
        if (http is null)
        {
            return;
        }

        try
        {
            http.Stop();
            loop?.GetAwaiter().GetResult();
            http.Close();
        }
        catch (HttpListenerException)
        {
            // HttpListener.Close of a listener whose Start failed (address in use) binds again to remove its
            // prefix and throws the same error; nothing is open to close. Seen as an unhandled exception
            // masking the one-line start error of a daemon that failed to start.
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            Close(_http, _loop);
            _http = null;
            _loop = null;
        }
    }
}
