namespace Vop.Appliance.Hosting;

/// <summary>
/// The daemon's run directory (config <c>runDir</c>, default /run/vop): its control socket at
/// control/NAME.sock and each link's sockets in LINK/. What a daemon made there goes when it stops.
/// </summary>
public static class RunDirectory
{
    public const string Default = "/run/vop";

    /// <summary>The control socket of daemon <paramref name="daemon"/> (its config file's name without .json).</summary>
    public static string ControlSocket(string runDir, string daemon) => Path.Combine(ControlDirectory(runDir), daemon + ".sock");

    /// <summary>Where every daemon of a run directory keeps its control socket; `vop status` lists it.</summary>
    public static string ControlDirectory(string runDir) => Path.Combine(runDir, "control");

    /// <summary>Removes an empty directory; one still holding something (or already gone) is left as it is.</summary>
    public static void RemoveIfEmpty(string dir)
    {
        try
        {
            if (Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any())
            {
                Directory.Delete(dir);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
