using System.CommandLine;
using Vop.Appliance.Config;
using Vop.Appliance.Demo;
using Vop.Appliance.Hosting;

namespace Vop.Appliance.Cli;

/// <summary>
/// The `vop` command tree: every verb, its arguments, options and defaults. Program.cs parses with it, and
/// deploy/tools/Vop.DocGen walks it to write the vop(8) man page and the bash completion, so those never
/// drift from what the binary accepts. Every verb is documented: test traffic lives in tests/tools/Vop.NetProbe.
/// An option's HelpName names its value for help and the man page; FILE and DIR values complete as paths.
/// </summary>
public static class VopCommandLine
{
    /// <summary>Exit code of a config file that does not load or validate (check-config and run).</summary>
    public const int ConfigError = 2;

    /// <summary>Exit code of a command line that does not parse: no verb, an unknown verb or option, a missing argument.</summary>
    public const int UsageError = 2;

    /// <summary>
    /// Parses and runs a command line (Program.cs). One that does not parse gets one line on standard error,
    /// "vop: unknown command 'frobnicate' (see vop --help)", and <see cref="UsageError"/>, instead of
    /// System.CommandLine's help text followed by every error it collected; `vop` alone prints the usage first.
    /// </summary>
    public static int Run(string[] args)
    {
        RootCommand root = Build();
        ParseResult result = root.Parse(args);
        return result.Errors.Count == 0 ? result.Invoke() : Refuse(root, result);
    }

    public static RootCommand Build()
    {
        var configOption = new Option<string>("--config", "-c") { Description = "config file (JSON)", HelpName = "FILE", Required = true };
        var run = new Command("run", "run the appliance (daemon; systemd Type=notify)") { configOption };
        run.SetAction(p => WithConfig(p.GetValue(configOption)!, DaemonHost.Run));

        var fileArgument = new Argument<string>("FILE") { Description = "config file to validate" };
        var check = new Command("check-config", "validate a config file without running it") { fileArgument };
        check.SetAction(p => WithConfig(p.GetValue(fileArgument)!, c =>
        {
            Console.WriteLine($"{c.Path}: ok ({c.Links.Count} link(s): {string.Join(", ", c.Links.Select(l => $"{l.Name} {l.Role.ToString().ToLowerInvariant()} with {l.Devices.Count} device(s)"))})");
            return 0;
        }));

        var checkOption = new Option<bool>("--check") { Description = "run once, print the figures, clean up, exit 0 or 1" };
        var demo = new Command("demo", "loopback demo: host and card in two network namespaces, ping and throughput across") { checkOption };
        demo.SetAction(p => DemoRunner.Run(p.GetValue(checkOption)));

        var linkArgument = new Argument<string>("LINK") { Description = "link name (the config's links[].name)" };
        var runDirOption = new Option<string>("--run-dir") { Description = "the daemons' run directory (config runDir): control and port sockets", HelpName = "DIR", DefaultValueFactory = _ => RunDirectory.Default };
        var portOption2 = new Option<string>("--port") { Description = "console port name", HelpName = "PORT", DefaultValueFactory = _ => "console" };
        var forceOption = new Option<bool>("--force") { Description = "take over the writer seat from another client" };
        var readonlyOption = new Option<bool>("--readonly") { Description = "watch only" };
        var consoleCommand = new Command("console", "attach the terminal to a link's console (Ctrl-] leaves)") { linkArgument, portOption2, runDirOption, forceOption, readonlyOption };
        consoleCommand.SetAction(p => ConsoleClient.Run(
            VirtioConsole.EndpointFactory.SocketPath(p.GetValue(runDirOption)!, p.GetValue(linkArgument)!, p.GetValue(portOption2)!),
            p.GetValue(forceOption),
            p.GetValue(readonlyOption)));

        var sshPortOption = new Option<string>("--port") { Description = "stream port name", HelpName = "PORT", DefaultValueFactory = _ => "ssh" };
        var sshProxy = new Command("ssh-proxy", "bridge stdin/stdout to a link's ssh port (for ssh ProxyCommand)") { linkArgument, sshPortOption, runDirOption };
        sshProxy.SetAction(p => SshProxy.Run(VirtioConsole.EndpointFactory.SocketPath(p.GetValue(runDirOption)!, p.GetValue(linkArgument)!, p.GetValue(sshPortOption)!)));

        var jsonOption = new Option<bool>("--json", "-j") { Description = "JSON output" };
        var urlOption = new Option<string?>("--url") { Description = "read one daemon's HTTP endpoint instead (metrics.listen, e.g. http://127.0.0.1:9465)", HelpName = "URL" };
        var intervalOption = new Option<double>("--interval") { Description = "seconds between the two samples for rates", HelpName = "SECONDS", DefaultValueFactory = _ => 1.0 };
        var nameArgument = new Argument<string?>("NAME") { Description = "only this daemon (config file name) or link", Arity = ArgumentArity.ZeroOrOne };
        var status = new Command("status", "every running daemon's links, devices and per-queue counters with live rates") { nameArgument, jsonOption, runDirOption, urlOption, intervalOption };
        RefuseOptionLike(nameArgument, status);
        status.SetAction(p => StatusCommand.Run(p.GetValue(runDirOption)!, p.GetValue(nameArgument), p.GetValue(urlOption), p.GetValue(jsonOption), Math.Clamp(p.GetValue(intervalOption), 0.1, 60)));

        var reloadName = new Argument<string?>("NAME") { Description = "the daemon (its config file's name); needed when several run", Arity = ArgumentArity.ZeroOrOne };
        var reloadConfig = new Option<string?>("--config", "-c") { Description = "the daemon's config file: validated here first, names the daemon and its run directory (the unit's ExecReload)", HelpName = "FILE" };
        var reload = new Command("reload", "make a running daemon read its config again: links added, removed or restarted, the rest untouched") { reloadName, reloadConfig, runDirOption };
        RefuseOptionLike(reloadName, reload);
        reload.SetAction(p => ReloadCommand.Run(p.GetValue(reloadName), p.GetValue(reloadConfig), p.GetValue(runDirOption)!));

        var writeOption = new Option<string>("-w", "--write") { Description = "pcap file to write", HelpName = "FILE", Required = true };
        var queueFilter = new Option<string?>("--queue") { Description = "only this queue (rx0: device to driver, tx0: driver to device)", HelpName = "QUEUE" };
        var countLimit = new Option<long>("--count", "-c") { Description = "stop after this many frames", HelpName = "N" };
        var durationLimit = new Option<double>("--duration") { Description = "stop after this many seconds", HelpName = "SECONDS" };
        var verboseOption = new Option<bool>("--verbose", "-v") { Description = "print each frame's virtio-net header fields" };
        var capture = new Command("capture", "write the frames crossing a link to a pcap file (Ctrl-C stops)") { linkArgument, writeOption, queueFilter, countLimit, durationLimit, verboseOption, runDirOption };
        capture.SetAction(p => CaptureCommand.Run(
            p.GetValue(runDirOption)!,
            p.GetValue(linkArgument)!,
            p.GetValue(writeOption)!,
            p.GetValue(queueFilter),
            p.GetValue(countLimit),
            p.GetValue(durationLimit),
            p.GetValue(verboseOption)));

        var ivsSocket = new Option<string>("--socket", "-S") { Description = "UNIX socket QEMU's ivshmem-doorbell devices join (-chardev socket,path=...)", HelpName = "FILE", DefaultValueFactory = _ => IvshmemServerCommand.DefaultSocket };
        var ivsSize = new Option<string>("--size", "-l") { Description = "shared memory size, a power of two from 1M to 1G (K/M/G); the guests' windowSize", HelpName = "SIZE", DefaultValueFactory = _ => IvshmemServerCommand.DefaultSize };
        var ivsVectors = new Option<int>("--vectors", "-n") { Description = "interrupt vectors per peer; equal to QEMU's vectors= and the links' vectors", HelpName = "N", DefaultValueFactory = _ => IvshmemServerCommand.DefaultVectors };
        var ivsPeers = new Option<int>("--max-peers") { Description = "clients served at once; more are closed unserved", HelpName = "N", DefaultValueFactory = _ => IvshmemServerCommand.DefaultMaxPeers };
        var ivshmem = new Command("ivshmem-server", "serve shared memory and doorbells to QEMU ivshmem-doorbell guests (QEMU's ivshmem-server protocol; no data path on the host)") { ivsSocket, ivsSize, ivsVectors, ivsPeers };
        ivshmem.SetAction(p => IvshmemServerCommand.Run(p.GetValue(ivsSocket)!, p.GetValue(ivsSize)!, p.GetValue(ivsVectors), p.GetValue(ivsPeers)));

        return new RootCommand("vop: virtio-net and virtio-console over a shared memory window") { run, check, reload, status, capture, demo, consoleCommand, sshProxy, ivshmem };
    }

    private static int Refuse(RootCommand root, ParseResult result)
    {
        Command command = result.CommandResult.Command;
        string who = command == root ? "vop" : $"vop {command.Name}";
        string? word = result.UnmatchedTokens.FirstOrDefault(t => !t.StartsWith('-'));
        string what;
        if (command == root && word is not null)
        {
            what = $"unknown command '{word}'{DidYouMean(word, root.Subcommands.Select(c => c.Name))}";
        }
        else if (result.UnmatchedTokens.Count > 0)
        {
            what = string.Join("; ", result.UnmatchedTokens.Select(t => t.StartsWith('-')
                ? $"unknown option '{t}'{DidYouMean(t, command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)))}"
                : $"unexpected argument '{t}'"));
        }
        else if (command == root)
        {
            root.Parse("--help").Invoke(new InvocationConfiguration { Output = Console.Error });
            what = "a command is needed";
        }
        else
        {
            what = string.Join("; ", result.Errors.Select(e => e.Message.TrimEnd('.')).Select(m => m.Length > 0 ? char.ToLowerInvariant(m[0]) + m[1..] : m));
        }

        Console.Error.WriteLine($"{who}: {what} (see {who} --help)");
        return UsageError;
    }

    /// <summary>An optional argument takes a misspelled option ("--jsn") as its value: refuse it as the option it meant.</summary>
    private static void RefuseOptionLike(Argument<string?> argument, Command command) => argument.Validators.Add(r =>
    {
        if (r.Tokens is [{ Value: string t }] && t.StartsWith('-'))
        {
            r.AddError($"unknown option '{t}'{DidYouMean(t, command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)))}");
        }
    });

    private static string DidYouMean(string word, IEnumerable<string> known) =>
        ConfigSchema.Nearest(word, known) is string near ? $"; did you mean {near}?" : string.Empty;

    private static int WithConfig(string path, Func<ApplianceConfig, int> body)
    {
        ApplianceConfig config;
        try
        {
            config = ConfigLoader.Load(path);
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"vop: {e.Message}");
            return ConfigError;
        }

        return body(config);
    }
}
