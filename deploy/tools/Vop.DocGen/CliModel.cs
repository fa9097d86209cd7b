using System.CommandLine;
using System.Globalization;

namespace Vop.DocGen;

/// <summary>One option of a verb as documented: its spellings (short first), the name of its value (null for a flag), default.</summary>
internal sealed record VerbOption(IReadOnlyList<string> Names, string? Value, string Description, bool Required, string? Default)
{
    /// <summary>The long spelling, used in synopses.</summary>
    public string Long => Names[^1];
}

/// <summary>One positional argument of a verb.</summary>
internal sealed record VerbArgument(string Name, string Description);

/// <summary>A visible verb of `vop`.</summary>
internal sealed record Verb(string Name, string Description, IReadOnlyList<VerbArgument> Arguments, IReadOnlyList<VerbOption> Options);

/// <summary>
/// What the documentation says about the command line, read from the real command tree: visible verbs only
/// (hidden ones are test helpers), their arguments and options with value names and defaults, and the
/// options every verb accepts (help) or the root alone (version).
/// </summary>
internal sealed record CliModel(string Program, string Summary, IReadOnlyList<Verb> Verbs, IReadOnlyList<VerbOption> RootOptions, IReadOnlyList<VerbOption> CommonOptions)
{
    /// <param name="root">The command tree.</param>
    /// <param name="program">The installed name (the root command is named after the running executable).</param>
    public static CliModel From(RootCommand root, string program)
    {
        string summary = root.Description ?? "";
        string prefix = program + ": ";
        if (summary.StartsWith(prefix, StringComparison.Ordinal))
        {
            summary = summary[prefix.Length..];
        }

        // The help option is recursive: every verb takes it, so it is documented once, not per verb.
        VerbOption[] common = [.. root.Options.Where(o => !o.Hidden && o.Recursive).Select(Describe)];
        VerbOption[] rootOnly = [.. root.Options.Where(o => !o.Hidden && !o.Recursive).Select(Describe)];
        Verb[] verbs = [.. root.Subcommands.Where(c => !c.Hidden).Select(c => new Verb(
            c.Name,
            c.Description ?? "",
            [.. c.Arguments.Where(a => !a.Hidden).Select(a => new VerbArgument(a.HelpName ?? a.Name, a.Description ?? ""))],
            [.. c.Options.Where(o => !o.Hidden).Select(Describe)]))];
        return new CliModel(program, summary, verbs, rootOnly, common);
    }

    private static VerbOption Describe(Option o)
    {
        // Spellings a person types: "-x" and "--long"; DOS-style "/h" and the punctuation alias "-?" are left out.
        string[] names = [.. new[] { o.Name }.Concat(o.Aliases)
            .Where(n => n.StartsWith('-') && n.TrimStart('-').All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '-'))
            .Distinct(StringComparer.Ordinal)
            .OrderBy(n => n.StartsWith("--", StringComparison.Ordinal) ? 1 : 0)];
        bool flag = o.ValueType == typeof(bool) || o.Arity.MaximumNumberOfValues == 0;
        string? value = flag ? null : o.HelpName ?? o.Name.TrimStart('-').ToUpperInvariant();
        string? def = !flag && o.HasDefaultValue ? Convert.ToString(o.GetDefaultValue(), CultureInfo.InvariantCulture) : null;
        return new VerbOption(names, value, o.Description ?? "", o.Required, def);
    }
}
