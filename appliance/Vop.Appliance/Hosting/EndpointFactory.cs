using System.Net;
using Vop.Appliance.Config;
using Vop.VirtioConsole.Endpoints;

namespace Vop.VirtioConsole;

/// <summary>Which endpoint serves a port, by the end the console sits on (host or card) and the port's config.</summary>
public static class EndpointFactory
{
    public const string DefaultSshTarget = "127.0.0.1:22";

    public static string SocketPath(string runDir, string link, string port) => Path.Combine(runDir, link, port + ".sock");

    public static PortSet Create(string link, ConsoleConfigEntry console) => new(name =>
    {
        if (console.End == ConsoleEnd.Host)
        {
            return new SocketPortEndpoint(name, SocketPath(console.RunDir, link, name), console: name == "console");
        }

        PortEntry? port = console.Ports.FirstOrDefault(p => p.Name == name);
        if (port?.Command is { } command)
        {
            return new PtyPortEndpoint(name, [.. command]);
        }

        if (port?.Connect is { } target)
        {
            return new TcpPortEndpoint(name, IPEndPoint.Parse(target));
        }

        return name switch
        {
            "console" => new PtyPortEndpoint(name, ["/bin/login"]),
            "ssh" => new TcpPortEndpoint(name, IPEndPoint.Parse(DefaultSshTarget)),
            _ => new DiscardPortEndpoint(name),
        };
    });
}
