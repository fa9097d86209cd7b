using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Vop.Appliance.Config;

/// <summary>
/// What the config file's keys are, read from the source-generated contract (<see cref="ConfigJson"/>'s
/// <see cref="JsonTypeInfo"/>, no reflection, so it works in the Native AOT build): the keys an object at a
/// path takes, the JSON type a key expects, and the nearest known key to a misspelled one.
/// </summary>
internal static class ConfigSchema
{
    /// <summary>One step of a key path: a key (<see cref="Name"/>) or a list index.</summary>
    public readonly record struct Step(string? Name, int Index);

    /// <summary>A <see cref="JsonException.Path"/> ("$.links[0].devices[1].mtu", "$['odd key']") as steps.</summary>
    public static List<Step> Parse(string? jsonPath)
    {
        var steps = new List<Step>();
        string p = jsonPath ?? "$";
        int i = p.StartsWith('$') ? 1 : 0;
        while (i < p.Length)
        {
            if (p[i] == '.')
            {
                int end = p.IndexOfAny(['.', '['], i + 1);
                end = end < 0 ? p.Length : end;
                steps.Add(new Step(p[(i + 1)..end], -1));
                i = end;
            }
            else if (p.AsSpan(i).StartsWith("['"))
            {
                int end = p.IndexOf("']", i + 2, StringComparison.Ordinal);
                end = end < 0 ? p.Length : end;
                steps.Add(new Step(p[(i + 2)..end], -1));
                i = end + 2;
            }
            else if (p[i] == '[')
            {
                int end = p.IndexOf(']', i);
                end = end < 0 ? p.Length : end;
                steps.Add(new Step(null, int.TryParse(p.AsSpan(i + 1, end - i - 1), NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : 0));
                i = end + 1;
            }
            else
            {
                break;
            }
        }

        return steps;
    }

    /// <summary>The key path as vop writes it everywhere else: links[0].devices[1].mtu.</summary>
    public static string Format(IEnumerable<Step> steps)
    {
        var s = new StringBuilder();
        foreach (Step step in steps)
        {
            if (step.Name is null)
            {
                s.Append(CultureInfo.InvariantCulture, $"[{step.Index}]");
            }
            else
            {
                s.Append(s.Length == 0 ? string.Empty : ".").Append(step.Name);
            }
        }

        return s.ToString();
    }

    /// <summary>The contract of the value at <paramref name="steps"/>, or null where the file has a key the contract has not.</summary>
    public static JsonTypeInfo? TypeAt(IEnumerable<Step> steps)
    {
        JsonTypeInfo? info = ConfigJson.Default.VopConfigFile;
        foreach (Step step in steps)
        {
            Type? next = info switch
            {
                { Kind: JsonTypeInfoKind.Object } when step.Name is not null => info.Properties.FirstOrDefault(p => p.Name == step.Name)?.PropertyType,
                { Kind: JsonTypeInfoKind.Enumerable } when step.Name is null => info.ElementType,
                _ => null,
            };
            info = next is null ? null : ConfigJson.Default.GetTypeInfo(next);
            if (info is null)
            {
                return null;
            }
        }

        return info;
    }

    /// <summary>The keys the object at <paramref name="steps"/> takes, in declaration order.</summary>
    public static IReadOnlyList<string> KeysAt(IEnumerable<Step> steps) =>
        TypeAt(steps) is { Kind: JsonTypeInfoKind.Object } info ? [.. info.Properties.Select(p => p.Name)] : [];

    /// <summary>What a value of this contract is written as: "a number", "a string", "an array of objects".</summary>
    public static string Expected(JsonTypeInfo info) => Noun(info) is var noun && noun[0] is 'a' or 'o' ? "an " + noun : "a " + noun;

    private static string Noun(JsonTypeInfo info) => info.Kind switch
    {
        JsonTypeInfoKind.Object or JsonTypeInfoKind.Dictionary => "object",
        JsonTypeInfoKind.Enumerable when info.ElementType is Type e && ConfigJson.Default.GetTypeInfo(e) is JsonTypeInfo element => $"array of {Noun(element)}s",
        JsonTypeInfoKind.Enumerable => "array",
        _ => (Nullable.GetUnderlyingType(info.Type) ?? info.Type) switch
        {
            Type t when t == typeof(string) => "string",
            Type t when t == typeof(bool) => "boolean",
            Type t when IsWholeNumber(t) || t == typeof(double) || t == typeof(float) || t == typeof(decimal) => "number",
            _ => "value",
        },
    };

    /// <summary>A whole-number contract's range, for a number that is one but does not fit ("1.5", "1e12").</summary>
    public static string? WholeNumberRange(JsonTypeInfo info) => (Nullable.GetUnderlyingType(info.Type) ?? info.Type) switch
    {
        Type t when t == typeof(int) => $"a whole number from {int.MinValue} to {int.MaxValue}",
        Type t when t == typeof(long) => $"a whole number from {long.MinValue} to {long.MaxValue}",
        Type t when IsWholeNumber(t) => "a whole number",
        _ => null,
    };

    /// <summary>What a JSON value is: "a string", "a number", "an array", "null".</summary>
    public static string Kind(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "something else",
    };

    /// <summary>
    /// The known key a misspelled one most likely meant: the same but for case, else the nearest within
    /// edit distance 2 (and less than the key's length, so "x" suggests nothing); null when none is near.
    /// </summary>
    public static string? Nearest(string key, IEnumerable<string> known)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (string k in known)
        {
            int d = string.Equals(k, key, StringComparison.OrdinalIgnoreCase) ? 0 : Distance(key, k);
            if (d < bestDistance)
            {
                (best, bestDistance) = (k, d);
            }
        }

        return bestDistance <= 2 && bestDistance < key.Length ? best : null;
    }

    /// <summary>Levenshtein distance (insert, delete, substitute), case-insensitive.</summary>
    public static int Distance(string a, string b)
    {
        int[] previous = new int[b.Length + 1];
        int[] current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int substitute = previous[j - 1] + (char.ToLowerInvariant(a[i - 1]) == char.ToLowerInvariant(b[j - 1]) ? 0 : 1);
                current[j] = Math.Min(substitute, Math.Min(previous[j], current[j - 1]) + 1);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }

    private static bool IsWholeNumber(Type t) =>
        t == typeof(int) || t == typeof(long) || t == typeof(short) || t == typeof(byte) || t == typeof(uint) || t == typeof(ulong) || t == typeof(ushort);
}
