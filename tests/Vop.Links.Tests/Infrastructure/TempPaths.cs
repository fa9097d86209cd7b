namespace Vop.Links.Tests.Infrastructure;

/// <summary>A private temporary directory per test, removed on dispose; socket paths stay short.</summary>
public sealed class TempPaths : IDisposable
{
    public TempPaths()
    {
        Root = Path.Combine(Path.GetTempPath(), $"vopt-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    public string File(string name) => Path.Combine(Root, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
