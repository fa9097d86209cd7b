using System.Diagnostics;

namespace Vop.Appliance.Tests.Infrastructure;

/// <summary>
/// A real OpenSSH server in a namespace, listening on 127.0.0.1:22 only, with a host key and a client key
/// made for the test; the client side gets an ssh_config using `vop ssh-proxy` as ProxyCommand.
/// </summary>
public sealed class SshServer : IDisposable
{
    private readonly Process _sshd;

    public SshServer(string netns, string dir, string runDir)
    {
        Dir = Path.Combine(dir, "ssh");
        Directory.CreateDirectory(Dir);
        Directory.CreateDirectory("/run/sshd");
        Run.Must(Run.In(null, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", HostKey), "host key");
        Run.Must(Run.In(null, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", ClientKey), "client key");
        File.Copy(ClientKey + ".pub", AuthorizedKeys);
        File.WriteAllText(Path.Combine(Dir, "sshd_config"), $"""
            ListenAddress 127.0.0.1
            Port 22
            HostKey {HostKey}
            AuthorizedKeysFile {AuthorizedKeys}
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            PidFile {Path.Combine(Dir, "sshd.pid")}
            Subsystem sftp internal-sftp
            """);
        _sshd = Run.Background(netns, Path.Combine(Dir, "sshd.log"), "/usr/sbin/sshd", "-D", "-e", "-f", Path.Combine(Dir, "sshd_config"));
        File.WriteAllText(ClientConfig, $"""
            Host card0
              User root
              IdentityFile {ClientKey}
              IdentitiesOnly yes
              StrictHostKeyChecking no
              UserKnownHostsFile /dev/null
              LogLevel ERROR
              ProxyCommand {string.Join(' ', Run.Vop("ssh-proxy", "card0", "--run-dir", runDir))}
            """);
        Thread.Sleep(300);
    }

    public string Dir { get; }

    public string HostKey => Path.Combine(Dir, "host_ed25519");

    public string ClientKey => Path.Combine(Dir, "client_ed25519");

    public string AuthorizedKeys => Path.Combine(Dir, "authorized_keys");

    public string ClientConfig => Path.Combine(Dir, "ssh_config");

    public string Log => File.Exists(Path.Combine(Dir, "sshd.log")) ? File.ReadAllText(Path.Combine(Dir, "sshd.log")) : string.Empty;

    public void Dispose()
    {
        LinkPair.Kill(_sshd, 15);
        _sshd.Dispose();
    }
}
