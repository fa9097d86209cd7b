namespace Vop.Appliance.Config;

/// <summary>
/// Where a value sits: the file and the key path (links[0].devices[1].mac). The one way a mistake becomes a
/// <see cref="ConfigException"/>: "FILE: KEY: what is wrong and what would be right", on one line.
/// </summary>
public readonly record struct ConfigKey(string File, string Path)
{
    public static ConfigKey Root(string file) => new(file, string.Empty);

    /// <summary>A key below this one: links[0] → links[0].devices.</summary>
    public ConfigKey this[string key] => new(File, Path.Length == 0 ? key : $"{Path}.{key}");

    /// <summary>An element of this list: links → links[0].</summary>
    public ConfigKey this[int index] => new(File, $"{Path}[{index}]");

    public ConfigException Error(string message) => new(Path.Length == 0 ? $"{File}: {message}" : $"{File}: {Path}: {message}");

    public string Required(string? value) => string.IsNullOrWhiteSpace(value) ? throw Error("required") : value;
}
