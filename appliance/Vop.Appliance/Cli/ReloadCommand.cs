using System.Net.Sockets;
using Vop.Appliance.Config;
using Vop.Appliance.Hosting;

namespace Vop.Appliance.Cli;

/// <summary>
/// `vop reload [NAME | --config FILE]`: asks a running daemon, through its control socket, to read its config
/// file again and apply it (links added, removed or restarted; everything unchanged keeps running). With
/// --config (the unit's ExecReload), the file is validated here first and names the daemon and its run
/// directory. Prints what changed; a config that does not validate is one line and exit 2, nothing changed.
/// </summary>
public static class ReloadCommand
{
    public static int Run(string? name, string? configPath, string runDir)
    {
        if (configPath is not null)
        {
            ApplianceConfig config;
            try
            {
                config = ConfigLoader.Load(configPath);
            }
            catch (ConfigException e)
            {
                Console.Error.WriteLine($"vop reload: {e.Message} (nothing changed)");
                return VopCommandLine.ConfigError;
            }

            name ??= config.Name;
            runDir = config.RunDir;
        }

        IReadOnlyList<string> sockets = ControlClient.Sockets(runDir);
        string? socket = name is null
            ? sockets.Count == 1 ? sockets[0] : null
            : sockets.FirstOrDefault(s => ControlClient.DaemonOf(s) == name);
        if (socket is null)
        {
            Console.Error.WriteLine(sockets.Count == 0
                ? $"vop reload: no vop daemon is running under {runDir} (no {RunDirectory.ControlDirectory(runDir)}/*.sock; is vop running, and with --run-dir?)"
                : name is null
                    ? $"vop reload: {sockets.Count} daemons run under {runDir} ({string.Join(", ", sockets.Select(ControlClient.DaemonOf))}); name one"
                    : $"vop reload: no daemon '{name}' under {runDir} (running: {string.Join(", ", sockets.Select(ControlClient.DaemonOf))})");
            return 1;
        }

        string daemon = ControlClient.DaemonOf(socket);
        ControlClient.Answer answer = ControlClient.Request(socket, ControlProtocol.Reload, TimeSpan.FromMinutes(2));
        if (answer.Socket is null)
        {
            bool config = answer.Error?.StartsWith(ControlProtocol.ConfigErrorPrefix, StringComparison.Ordinal) == true;
            string error = config ? answer.Error![ControlProtocol.ConfigErrorPrefix.Length..] : answer.Error ?? "no answer";
            Console.Error.WriteLine(config ? $"vop reload: {error} (nothing changed)" : $"vop reload: daemon {daemon}: {error}");
            return config ? VopCommandLine.ConfigError : 1;
        }

        using Socket s = answer.Socket;
        string? summary = ControlProtocol.ReadLine(s);
        Console.WriteLine($"vop reload: daemon {daemon}: {summary}");
        return 0;
    }
}
