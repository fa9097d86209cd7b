using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Vop.Appliance.Config;

namespace Vop.Appliance.Hosting;

/// <summary>`vop run`: a generic host with systemd integration (Type=notify) and one hosted service per link.</summary>
public static class DaemonHost
{
    public static int Run(ApplianceConfig config)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            DisableDefaults = true,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        // VOP_LOG_LEVEL=debug shows e.g. every vhost-user message; the default keeps the journal quiet.
        builder.Logging.SetMinimumLevel(Enum.TryParse(Environment.GetEnvironmentVariable("VOP_LOG_LEVEL"), ignoreCase: true, out LogLevel level) ? level : LogLevel.Information);
        // A failed start is reported as one line by Run below, not as the host's stack trace.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);
        builder.Services.AddSystemd();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        // Hosted services start in this order and stop in reverse: the links, then the control socket and the
        // HTTP endpoint, so neither ever sees a link half set up.
        builder.Services.AddSingleton(sp => new LinkSet(config.Links, sp.GetRequiredService<ILoggerFactory>()));
        builder.Services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<LinkSet>());
        builder.Services.AddSingleton(sp => new ApplianceState(config, sp.GetRequiredService<LinkSet>()));
        builder.Services.AddSingleton(sp => new MetricsHttpServer(config.MetricsListen, sp.GetRequiredService<ApplianceState>(), sp.GetRequiredService<ILoggerFactory>().CreateLogger("vop.metrics")));
        builder.Services.AddSingleton(sp => new DaemonReload(config, sp.GetRequiredService<LinkSet>(), sp.GetRequiredService<MetricsHttpServer>(), sp.GetRequiredService<ILoggerFactory>().CreateLogger("vop.reload")));
        builder.Services.AddSingleton<IHostedService>(sp => new ControlServer(config, sp.GetRequiredService<ApplianceState>(), sp.GetRequiredService<LinkSet>(), sp.GetRequiredService<DaemonReload>(), sp.GetRequiredService<ILoggerFactory>().CreateLogger("vop.control")));
        builder.Services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<MetricsHttpServer>());

        using IHost host = builder.Build();

        // SIGHUP reloads the config, as for most daemons (the result is logged; `vop reload` also prints it).
        DaemonReload reload = host.Services.GetRequiredService<DaemonReload>();
        using PosixSignalRegistration hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c =>
        {
            c.Cancel = true;
            ThreadPool.QueueUserWorkItem(_ =>
            {
                try
                {
                    reload.Reload();
                }
                catch (Exception e) when (e is ConfigException or InvalidOperationException)
                {
                    // Logged by Reload.
                }
            });
        });
        try
        {
            host.Run();
            return 0;
        }
        catch (InvalidOperationException e)
        {
            Console.Error.WriteLine($"vop: {e.Message}");
            return 1;
        }
    }
}
