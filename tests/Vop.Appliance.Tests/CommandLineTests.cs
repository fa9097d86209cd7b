using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>A command line that does not parse gets one line saying what is wrong and where to look, and exit code 2.</summary>
public sealed class CommandLineTests
{
    [Theory]
    [InlineData(new[] { "frobnicate" }, "vop: unknown command 'frobnicate' (see vop --help)")]
    [InlineData(new[] { "stauts", "-j" }, "vop: unknown command 'stauts'; did you mean status? (see vop --help)")]
    [InlineData(new[] { "--bogus" }, "vop: unknown option '--bogus' (see vop --help)")]
    [InlineData(new[] { "status", "--jsn" }, "vop status: unknown option '--jsn'; did you mean --json? (see vop status --help)")]
    [InlineData(new[] { "run" }, "vop run: option '--config' is required (see vop run --help)")]
    [InlineData(new[] { "check-config", "a.json", "b.json" }, "vop check-config: unexpected argument 'b.json' (see vop check-config --help)")]
    public void AMistakeIsOneLineAndExitCode2(string[] args, string expected)
    {
        (int code, string output, string err) = Run.In(null, Run.Vop(args));
        Assert.Equal(2, code);
        Assert.Equal(string.Empty, output);
        Assert.Equal(expected, err.TrimEnd('\n'));
    }

    [Fact]
    public void NoCommandPrintsTheUsageAndSaysACommandIsNeeded()
    {
        (int code, string output, string err) = Run.In(null, Run.Vop());
        Assert.Equal(2, code);
        Assert.Equal(string.Empty, output);
        Assert.Contains("Usage:", err);
        Assert.Contains("check-config <FILE>", err);
        Assert.EndsWith("vop: a command is needed (see vop --help)", err.TrimEnd('\n'));
        Assert.DoesNotContain("Required command", err);

        (code, output, _) = Run.In(null, Run.Vop("--help"));
        Assert.Equal(0, code);
        Assert.Contains("Usage:", output);
    }
}
