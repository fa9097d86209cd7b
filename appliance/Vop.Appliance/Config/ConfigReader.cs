using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;

namespace Vop.Appliance.Config;

/// <summary>
/// The config file as written: its text, then strict JSON (<see cref="ConfigJson"/>: unknown keys and trailing
/// commas refused, comments allowed) into <see cref="VopConfigFile"/>. A JSON mistake becomes one line naming the
/// key path and the line, what the key expects, and the nearest known key to an unknown one (<see cref="ConfigSchema"/>).
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
            throw ConfigKey.Root(path).Error(Describe(e, text));
        }
    }

    private static string Describe(JsonException e, string text)
    {
        List<ConfigSchema.Step> steps = ConfigSchema.Parse(e.Path);
        string line = $"line {e.LineNumber + 1}";
        if (e.Message.Contains("could not be mapped", StringComparison.Ordinal))
        {
            return UnknownKey(steps, UnknownKeyName().Match(e.Message) is { Success: true } m ? m.Groups[1].Value : "?", line);
        }

        if (e.Message.Contains("could not be converted", StringComparison.Ordinal) && ConfigSchema.TypeAt(steps) is JsonTypeInfo expected)
        {
            string where = steps.Count == 0 ? string.Empty : ConfigSchema.Format(steps) + ": ";
            return $"{where}{WrongType(expected, ValueAt(text, steps))} ({line})";
        }

        if (e.Message.Contains("trailing comma", StringComparison.Ordinal))
        {
            string before = e.Message.Contains("JSON array", StringComparison.Ordinal) ? "]" : "}";
            return $"not valid JSON at {line}: a comma before '{before}' (JSON allows no comma after the last item; remove it)";
        }

        return $"not valid JSON at {line}: {e.Message.Split(" Path:")[0].Replace(" Change the reader options.", string.Empty, StringComparison.Ordinal).TrimEnd('.')}";
    }

    /// <summary>"links[0].devices[0].mtuu: unknown key; did you mean mtu?" or, with none near, the keys there are.</summary>
    private static string UnknownKey(List<ConfigSchema.Step> steps, string key, string line)
    {
        if (steps.Count > 0 && steps[^1].Name == key)
        {
            steps.RemoveAt(steps.Count - 1);
        }

        IReadOnlyList<string> known = ConfigSchema.KeysAt(steps);
        string at = ConfigSchema.Format([.. steps, new ConfigSchema.Step(key, -1)]);
        return ConfigSchema.Nearest(key, known) is string near
            ? $"{at}: unknown key; did you mean {near}? ({line})"
            : $"{at}: unknown key ({line}; {(steps.Count == 0 ? "the top level" : ConfigSchema.Format(steps))} takes {string.Join(", ", known)})";
    }

    /// <summary>"expected a number, got a string" and, where the fix is plain, what to write.</summary>
    private static string WrongType(JsonTypeInfo expected, JsonElement? got)
    {
        string want = ConfigSchema.Expected(expected);
        if (got is not JsonElement value)
        {
            return $"expected {want}";
        }

        if (value.ValueKind == JsonValueKind.Number && ConfigSchema.WholeNumberRange(expected) is string range)
        {
            return $"expected {range}, got {value.GetRawText()}";
        }

        string hint = (want, value.ValueKind) switch
        {
            ("a number", JsonValueKind.String) when double.TryParse(value.GetString(), System.Globalization.CultureInfo.InvariantCulture, out _) =>
                $"; write {value.GetString()} without quotes",
            ("a string", JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False) => $"; write \"{value.GetRawText()}\" in quotes",
            _ => string.Empty,
        };
        return $"expected {want}, got {ConfigSchema.Kind(value.ValueKind)}{hint}";
    }

    /// <summary>The value the file has at <paramref name="steps"/> (to say what it is), or null if the text does not parse that far.</summary>
    private static JsonElement? ValueAt(string text, List<ConfigSchema.Step> steps)
    {
        try
        {
            using var doc = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
            JsonElement e = doc.RootElement;
            foreach (ConfigSchema.Step step in steps)
            {
                if (step.Name is string name ? e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out e)
                    : e.ValueKind != JsonValueKind.Array || step.Index >= e.GetArrayLength())
                {
                    return null;
                }

                e = step.Name is null ? e[step.Index] : e;
            }

            return e.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    [GeneratedRegex("The JSON property '([^']*)'")]
    private static partial Regex UnknownKeyName();
}
