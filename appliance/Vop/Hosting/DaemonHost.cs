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
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        // A failed start is reported as one line by Run below, not as the host's stack trace.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);
        builder.Services.AddSystemd();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        foreach (LinkConfig link in config.Links)
        {
            builder.Services.AddSingleton<IHostedService>(sp => new LinkService(link, sp.GetRequiredService<ILoggerFactory>()));
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
