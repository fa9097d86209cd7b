using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Vop.Metrics;

namespace Vop.Appliance.Hosting;

/// <summary>
/// The daemon's HTTP endpoint (HttpListener, no ASP.NET): <c>/metrics</c> in the Prometheus text format,
/// <c>/status.json</c> for <c>vop status</c>, and a landing page at <c>/</c>. Default 127.0.0.1:9465.
/// </summary>
public sealed class MetricsHttpServer : IHostedService, IDisposable
{
    private readonly string _listen;
    private readonly ApplianceState _state;
    private readonly MetricsExporter _exporter;
    private readonly ILogger _log;
    private readonly HttpListener _http = new();
    private Task? _loop;

    public MetricsHttpServer(string listen, ApplianceState state, ILogger log)
    {
        _listen = listen;
        _state = state;
        _log = log;
        _exporter = new MetricsExporter(state.Snapshot);
        IPEndPoint ep = IPEndPoint.Parse(listen);
        string host = ep.Address.Equals(IPAddress.Any) ? "+" : ep.Address.ToString();
        _http.Prefixes.Add($"http://{host}:{ep.Port}/");
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            _http.Start();
        }
        catch (HttpListenerException e)
        {
            throw new InvalidOperationException($"metrics.listen {_listen}: {e.Message}", e);
        }

        _loop = Task.Run(Serve, CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task Serve()
    {
        while (_http.IsListening)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _http.GetContextAsync().ConfigureAwait(false);
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

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _http.Stop();
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        try
        {
            _http.Close();
        }
        catch (HttpListenerException)
        {
            // HttpListener.Close of a listener whose Start failed (address in use) binds again to remove its
            // prefix and throws the same error; nothing is open to close. Seen as an unhandled exception
            // masking the one-line start error of a daemon that failed to start.
        }
    }
}
