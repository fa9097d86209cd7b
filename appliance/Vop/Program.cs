using System.CommandLine;
using Vop.Appliance.Cli;
using Vop.Appliance.Config;
using Vop.Appliance.Demo;
using Vop.Appliance.Hosting;

var configOption = new Option<string>("--config", "-c") { Description = "config file (JSON)", Required = true };
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

var portOption = new Option<int>("--port") { DefaultValueFactory = _ => 5201 };
var sink = new Command("_tcp-sink", "receive one TCP stream and print its size, SHA-256 and rate") { portOption };
sink.Hidden = true;
sink.SetAction(p => TcpTransfer.Sink(p.GetValue(portOption), Console.Out));

var toOption = new Option<string>("--connect") { Required = true };
var bytesOption = new Option<long>("--bytes") { DefaultValueFactory = _ => 256L << 20 };
var seedOption = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
var source = new Command("_tcp-source", "send seeded pseudo-random bytes over TCP and print SHA-256 and rate") { toOption, bytesOption, seedOption };
source.Hidden = true;
source.SetAction(p => TcpTransfer.Source(p.GetValue(toOption)!, p.GetValue(bytesOption), p.GetValue(seedOption), Console.Out));

var addressArgument = new Argument<string>("ADDRESS");
var countOption = new Option<int>("--count") { DefaultValueFactory = _ => 5 };
var pingCommand = new Command("_ping", "ICMP echo with RTT summary") { addressArgument, countOption };
pingCommand.Hidden = true;
pingCommand.SetAction(p => Pinger.Run(p.GetValue(addressArgument)!, p.GetValue(countOption), Console.Out));

var root = new RootCommand("vop: virtio-net and virtio-console over a shared memory window") { run, check, demo, sink, source, pingCommand };
return root.Parse(args).Invoke();

static int WithConfig(string path, Func<ApplianceConfig, int> body)
{
    ApplianceConfig config;
    try
    {
        config = ConfigLoader.Load(path);
    }
    catch (ConfigException e)
    {
        Console.Error.WriteLine($"vop: {e.Message}");
        return 2;
    }

    return body(config);
}
