namespace Vop.Appliance.Config;

/// <summary>
/// Reads and validates a config file (the first step of `vop run` and all of `vop check-config`): the file
/// (<see cref="ConfigReader"/>), each link (<see cref="LinkValidator"/>), then what must be unique across
/// links, and the metrics address. Every mistake is one <see cref="ConfigException"/> line (<see cref="ConfigKey"/>).
/// </summary>
public static class ConfigLoader
{
    public const string DefaultMetricsListen = "127.0.0.1:9465";

    public static ApplianceConfig Load(string path) => Parse(path, ConfigReader.ReadText(path));

    public static ApplianceConfig Parse(string path, string text)
    {
        VopConfigFile? file = ConfigReader.Deserialize(path, text);
        ConfigKey root = ConfigKey.Root(path);
        if (file?.Links is not { Count: > 0 } links)
        {
            throw root["links"].Error("at least one link is required");
        }

        string runDir = PathRules.RunDir(root["runDir"], file.RunDir);
        string control = Hosting.RunDirectory.ControlSocket(runDir, Path.GetFileNameWithoutExtension(path));
        if (System.Text.Encoding.UTF8.GetByteCount(control) > PathRules.MaxSocketPathBytes)
        {
            throw root["runDir"].Error($"'{runDir}' makes the control socket {control} longer than {PathRules.MaxSocketPathBytes} bytes");
        }

        var result = new List<LinkConfig>();
        var taps = new HashSet<string>();
        var names = new HashSet<string>();
        var sockets = new HashSet<string>();
        for (int i = 0; i < links.Count; i++)
        {
            ConfigKey at = root["links"][i];
            LinkConfig link = LinkValidator.Validate(at, links[i], runDir) with
            {
                Source = System.Text.Json.JsonSerializer.Serialize(links[i], ConfigJson.Default.LinkConfigFile),
            };
            if (!names.Add(link.Name))
            {
                throw at["name"].Error($"'{link.Name}' is used by another link");
            }

            if (link.Socket.Length > 0 && !sockets.Add(link.Socket))
            {
                throw at["socket"].Error($"'{link.Socket}' is used by another link");
            }

            for (int d = 0; d < link.Devices.Count; d++)
            {
                if (link.Devices[d] is NetDeviceEntry net && !taps.Add(net.Options.Tap))
                {
                    throw at["devices"][d]["tap"].Error($"'{net.Options.Tap}' is used by another device");
                }
            }

            result.Add(link);
        }

        return new ApplianceConfig(path, result, MetricsListen(root["metrics"]["listen"], file.Metrics?.Listen)) { RunDir = runDir };
    }

    /// <summary>address:port, or null for "off" (or empty): no metrics endpoint.</summary>
    private static string? MetricsListen(ConfigKey at, string? listen)
    {
        listen ??= DefaultMetricsListen;
        if (listen is "" or "off")
        {
            return null;
        }

        return System.Net.IPEndPoint.TryParse(listen, out System.Net.IPEndPoint? ep) && ep.Port != 0
            ? listen
            : throw at.Error($"'{listen}' is not an address:port (or \"off\")");
    }
}
