using System.CommandLine;
using Vop.NetProbe;

// Traffic for the end-to-end tests and tests/bench: run inside a network namespace with
// `ip netns exec NS dotnet Vop.NetProbe.dll VERB ...`. Output is name=value lines (tcp-*), an iputils-like
// summary (ping) or the response body (http-get); the tests parse them.
var portOption = new Option<int>("--port") { DefaultValueFactory = _ => 5201 };
var sink = new Command("tcp-sink", "receive one TCP stream and print its size, SHA-256 and rate") { portOption };
sink.SetAction(p => TcpTransfer.Sink(p.GetValue(portOption), Console.Out));

var toOption = new Option<string>("--connect") { Required = true };
var bytesOption = new Option<long>("--bytes") { DefaultValueFactory = _ => 256L << 20 };
var seedOption = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
var source = new Command("tcp-source", "send seeded pseudo-random bytes over TCP and print SHA-256 and rate") { toOption, bytesOption, seedOption };
source.SetAction(p => TcpTransfer.Source(p.GetValue(toOption)!, p.GetValue(bytesOption), p.GetValue(seedOption), Console.Out));

var addressArgument = new Argument<string>("ADDRESS");
var countOption = new Option<int>("--count") { DefaultValueFactory = _ => 5 };
var ping = new Command("ping", "ICMP echo with an RTT summary") { addressArgument, countOption };
ping.SetAction(p => Pinger.Run(p.GetValue(addressArgument)!, p.GetValue(countOption), Console.Out));

var urlArgument = new Argument<string>("URL");
var httpGet = new Command("http-get", "print the body of an HTTP GET") { urlArgument };
httpGet.SetAction(p =>
{
    using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
    try
    {
        Console.Write(http.GetStringAsync(p.GetValue(urlArgument)!).GetAwaiter().GetResult());
        return 0;
    }
    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
    {
        Console.Error.WriteLine($"netprobe http-get: {e.Message}");
        return 1;
    }
});

return new RootCommand("vop test traffic: TCP sink/source, ping, HTTP GET") { sink, source, ping, httpGet }.Parse(args).Invoke();
