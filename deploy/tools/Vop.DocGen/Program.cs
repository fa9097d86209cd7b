using System.Globalization;
using Vop.Appliance.Cli;
using Vop.DocGen;

// vop-docgen OUTDIR [VERSION [DATE]]: writes OUTDIR/vop.8 and OUTDIR/vop.bash-completion from VopCommandLine.Build().
if (args.Length is < 1 or > 3)
{
    Console.Error.WriteLine("usage: Vop.DocGen OUTDIR [VERSION [YYYY-MM-DD]]");
    return 2;
}

string outDir = args[0];
string version = args.Length > 1 ? args[1] : "unreleased";
string date = args.Length > 2 ? args[2] : DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
Directory.CreateDirectory(outDir);

CliModel cli = CliModel.From(VopCommandLine.Build(), "vop");
File.WriteAllText(Path.Combine(outDir, "vop.8"), ManPage.Write(cli, version, date, VopCommandLine.ConfigError, VopCommandLine.UsageError));
File.WriteAllText(Path.Combine(outDir, "vop.bash-completion"), BashCompletion.Write(cli));
Console.WriteLine($"{outDir}: vop.8 and vop.bash-completion ({cli.Verbs.Count} commands: {string.Join(", ", cli.Verbs.Select(v => v.Name))})");
return 0;
