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
        for (int i = 0; i < config.Links.Count; i++)
        {
            LinkConfig link = config.Links[i];
            int index = i;
            builder.Services.AddSingleton(sp => new LinkService(link, sp.GetRequiredService<ILoggerFactory>()));
            builder.Services.AddSingleton<IHostedService>(sp => sp.GetServices<LinkService>().ElementAt(index));
        }

        builder.Services.AddSingleton(sp => new ApplianceState(config, sp.GetServices<LinkService>()));
        // After the links (hosted services start in order): a request never sees a link half set up.
        builder.Services.AddSingleton<IHostedService>(sp => new ControlServer(config, sp.GetRequiredService<ApplianceState>(), sp.GetServices<LinkService>(), sp.GetRequiredService<ILoggerFactory>().CreateLogger("vop.control")));
        if (config.MetricsListen is string listen)
        {
            // Registered after the links: hosted services start in order, so /metrics sees them set up.
            builder.Services.AddSingleton<IHostedService>(sp => new MetricsHttpServer(listen, sp.GetRequiredService<ApplianceState>(), sp.GetRequiredService<ILoggerFactory>().CreateLogger("vop.metrics")));
        }

        using IHost host = builder.Build();
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
