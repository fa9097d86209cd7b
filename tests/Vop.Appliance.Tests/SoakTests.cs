using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// Two minutes of tests/bench/soak.sh: iperf3 through a loopback pair while either side is SIGKILLed and
/// restarted and hostile sessions (an extra ivshmem client, a client that tries to shrink the memory)
/// come and go. Every kill must recover and nothing may grow; the hour-long run is in docs/benchmarks.md.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class SoakTests
{
    [Fact]
    public void TwoMinuteSoakRecoversEveryKillWithoutGrowth()
    {
        Run.RequireRoot();
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "vop.slnx")))
        {
            root = Path.GetDirectoryName(root.TrimEnd('/')) ?? throw new InvalidOperationException("vop.slnx not found above the test directory");
        }

        (int code, string output, string err) = Run.In(null, TimeSpan.FromMinutes(6), "bash", Path.Combine(root, "tests", "bench", "soak.sh"), "2");
        string all = $"{output}\n{err}";
        Assert.True(code == 0, $"soak.sh failed ({code}):\n{all}");
        long Value(string key) => long.Parse(LinkPair.Field(output, key), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Value("host_peer_kills") >= 1 && Value("card_peer_kills") >= 1, all);
        Assert.Equal(Value("host_peer_kills"), Value("host_recovered"));
        Assert.Equal(Value("card_peer_kills"), Value("card_recovered"));
        Assert.Equal(0, Value("host_unexpected_exits"));
        Assert.Equal(0, Value("card_unexpected_exits"));
        Assert.Equal(0, Value("hostile_second_client_admitted"));
        Assert.Equal(0, Value("hostile_truncate_ok"));
        Assert.True(Value("hostile_sessions") >= 1, all);
        Assert.True(Value("host_fd_growth") <= 2 && Value("card_fd_growth") <= 2, $"fds grew:\n{all}");
        Assert.True(Value("host_rss_growth_kb") < 16 * 1024 && Value("card_rss_growth_kb") < 16 * 1024, $"RSS grew:\n{all}");
    }
}
