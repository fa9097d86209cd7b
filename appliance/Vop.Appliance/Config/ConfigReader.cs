using System.Text.Json;
using System.Text.RegularExpressions;

namespace Vop.Appliance.Config;

/// <summary>
/// The config file as written: its text, then strict JSON (<see cref="ConfigJson"/>: unknown keys refused) into
/// <see cref="VopConfigFile"/>. A JSON mistake becomes one line naming the key or the line.
/// </summary>
internal static partial class ConfigReader
{
    public static string ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw ConfigKey.Root(path).Error($"cannot read: {e.Message}");
        }
    }

    public static VopConfigFile? Deserialize(string path, string text)
    {
        try
        {
            return JsonSerializer.Deserialize(text, ConfigJson.Default.VopConfigFile);
        }
        catch (JsonException e)
        {
            throw ConfigKey.Root(path).Error(Describe(e));
        }
    }

    private static string Describe(JsonException e)
    {
        string where = e.Path is { Length: > 1 } p ? p.TrimStart('$', '.') : "(top level)";
        if (e.Message.Contains("could not be mapped", StringComparison.Ordinal))
        {
            Match m = UnknownKey().Match(e.Message);
            string key = m.Success ? m.Groups[1].Value : "?";
            string parent = where.EndsWith("." + key, StringComparison.Ordinal) ? where[..^(key.Length + 1)] : where;
            return $"{parent}: unknown key '{key}'";
        }

        if (e.Message.Contains("could not be converted", StringComparison.Ordinal))
        {
            return $"{where}: wrong type (line {e.LineNumber + 1})";
        }

        return $"not valid JSON at line {e.LineNumber + 1}: {e.Message.Split(" Path:")[0]}";
    }

    [GeneratedRegex("The JSON property '([^']*)'")]
    private static partial Regex UnknownKey();
}
