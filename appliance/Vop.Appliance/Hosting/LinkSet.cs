using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Vop.Appliance.Config;

namespace Vop.Appliance.Hosting;

/// <summary>
/// The daemon's running links, one <see cref="LinkService"/> each, started together at start and changed one by
/// one on reload (<see cref="Apply"/>): readers (status, metrics, the control socket) take <see cref="Current"/>,
/// an immutable list swapped whole, so they never see one half changed.
/// </summary>
public sealed class LinkSet : IHostedService, IDisposable
{
    private readonly IReadOnlyList<LinkConfig> _initial;
    private readonly ILoggerFactory _logs;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private volatile IReadOnlyList<LinkService> _links = [];
    private bool _disposed;

    public LinkSet(IReadOnlyList<LinkConfig> links, ILoggerFactory logs)
    {
        _initial = links;
        _logs = logs;
        _log = logs.CreateLogger("vop.reload");
    }

    public IReadOnlyList<LinkService> Current => _links;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var started = new List<LinkService>();
            try
            {
                foreach (LinkConfig c in _initial)
                {
                    started.Add(Start(c));
                }
            }
            catch
            {
                StopAll(started);
                throw;
            }

            _links = started;
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// Brings the running links to <paramref name="next"/> (already validated whole): added links start first,
    /// and if one cannot start (its TAP is taken, its socket path is not writable) the ones started for this
    /// reload stop again and nothing else changes; then removed links stop; then each changed link restarts
    /// with its new entry, or, when that entry cannot start, with its old one. Throws
    /// <see cref="InvalidOperationException"/> (one line) after what it could not do.
    /// </summary>
    public ReloadPlan Apply(IReadOnlyList<LinkConfig> next)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            IReadOnlyList<LinkService> running = _links;
            ReloadPlan plan = ReloadPlan.Between([.. running.Select(l => l.Config)], next);
            var byName = running.ToDictionary(l => l.Config.Name);
            var added = new List<LinkService>();
            try
            {
                foreach (LinkConfig c in plan.Added)
                {
                    added.Add(Start(c));
                }
            }
            catch (InvalidOperationException)
            {
                StopAll(added);
                throw;
            }

            foreach (LinkService s in added)
            {
                byName[s.Config.Name] = s;
            }

            foreach (LinkConfig c in plan.Removed)
            {
                Stop(byName[c.Name]);
                byName.Remove(c.Name);
            }

            var failures = new List<string>();
            foreach ((LinkConfig old, LinkConfig changed) in plan.Changed)
            {
                Stop(byName[old.Name]);
                try
                {
                    byName[old.Name] = Start(changed);
                }
                catch (InvalidOperationException e)
                {
                    try
                    {
                        byName[old.Name] = Start(old);
                        failures.Add(e.Message + " (kept running with its old entry)");
                    }
                    catch (InvalidOperationException again)
                    {
                        byName.Remove(old.Name);
                        failures.Add(e.Message + $" (and its old entry did not start again either: {again.Message}; it is stopped)");
                    }
                }
            }

            // In the new config's order, as `vop status` lists them.
            _links = [.. next.Where(c => byName.ContainsKey(c.Name)).Select(c => byName[c.Name])];
            if (failures.Count > 0)
            {
                throw new InvalidOperationException(string.Join("; ", failures));
            }

            return plan;
        }
    }

    private LinkService Start(LinkConfig config)
    {
        var service = new LinkService(config, _logs);
        try
        {
            service.StartAsync(CancellationToken.None).GetAwaiter().GetResult();
            return service;
        }
        catch
        {
            service.Dispose();
            throw;
        }
    }

    private void Stop(LinkService service)
    {
        _log.LogInformation("link {Link}: stopping", service.Config.Name);
        service.Dispose();
    }

    private static void StopAll(IEnumerable<LinkService> services)
    {
        foreach (LinkService s in services.Reverse())
        {
            s.Dispose();
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
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            StopAll(_links);
            _links = [];
        }
    }
}
