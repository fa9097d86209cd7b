using Microsoft.Extensions.Logging;
using Vop.Appliance.Config;

namespace Vop.Appliance.Hosting;

/// <summary>
/// `vop reload`, SIGHUP and the unit's ExecReload: reads the daemon's config file again and, when it validates
/// whole, applies it (<see cref="LinkSet.Apply"/>, then metrics.listen); a config that does not validate
/// changes nothing. One reload at a time.
/// </summary>
public sealed class DaemonReload
{
    private readonly LinkSet _links;
    private readonly MetricsHttpServer _metrics;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private ApplianceConfig _current;

    public DaemonReload(ApplianceConfig config, LinkSet links, MetricsHttpServer metrics, ILogger log)
    {
        _current = config;
        _links = links;
        _metrics = metrics;
        _log = log;
    }

    /// <summary>
    /// One line saying what changed. Throws <see cref="ConfigException"/> when the file does not validate
    /// (nothing changed) and <see cref="InvalidOperationException"/> when part of it could not be applied.
    /// </summary>
    public string Reload()
    {
        lock (_gate)
        {
            ApplianceConfig next;
            try
            {
                next = ConfigLoader.Load(_current.Path);
                if (next.RunDir != _current.RunDir)
                {
                    throw ConfigKey.Root(_current.Path)["runDir"].Error($"'{next.RunDir}' differs from the running '{_current.RunDir}', which holds the control socket; restart the daemon to move it");
                }
            }
            catch (ConfigException e)
            {
                _log.LogWarning("reload refused, nothing changed: {Error}", e.Message);
                throw;
            }

            ReloadPlan plan;
            string? listenBefore = _metrics.Listen;
            try
            {
                plan = _links.Apply(next.Links);
                _metrics.Rebind(next.MetricsListen);
            }
            catch (InvalidOperationException e)
            {
                _log.LogWarning("reload: {Error}", e.Message);
                throw;
            }

            _current = next;
            string summary = plan.Describe() + (next.MetricsListen == listenBefore ? string.Empty : $"; metrics on {next.MetricsListen ?? "nothing (off)"}");
            _log.LogInformation("reload: {Summary}", summary);
            return summary;
        }
    }
}
