namespace Vop.Appliance.Tests.Infrastructure;

/// <summary>A guest whose serial console runs a shell: what <see cref="GuestTraffic"/> needs of the x86 or the arm64 guest.</summary>
public interface IGuestShell
{
    /// <summary>Runs a shell command in the guest; its exit code and output.</summary>
    (int Code, string Output) Exec(string command, TimeSpan timeout);

    /// <summary>The end of the guest's console, for failure messages.</summary>
    string Tail();
}
