using System.Diagnostics;
using System.Text.Json.Nodes;
using Vop.Appliance.Tests.Infrastructure;

namespace Vop.Appliance.Tests;

/// <summary>
/// Live reconfiguration (issue 14): `vop reload`, its --config form (the unit's ExecReload) and SIGHUP add a
/// link to both running daemons and remove it again while a ping flood crosses the other link, which loses
/// nothing; a config that does not validate is refused whole with one line and exit 2.
/// </summary>
[Collection(EndToEnd.Name)]
public sealed class ReloadTests
{
    [Fact]
    public void ALinkAddedAndRemovedByReloadWorksWhilePresentAndTheFloodOnTheOtherLosesNothing()
    {
        using var pair = new LinkPair();
        pair.Up();
        string hostOriginal = File.ReadAllText(pair.HostConfig);
        string cardOriginal = File.ReadAllText(pair.CardConfig);
        string socketB = Path.Combine(pair.Dir, "b.sock");
        string subnetB = "10.196." + pair.Subnet.Split('.')[2];
        File.WriteAllText(pair.HostConfig, WithLink(hostOriginal, new JsonObject
        {
            ["name"] = "card1", ["kind"] = "loopback", ["role"] = "device", ["end"] = "host", ["socket"] = socketB, ["windowSize"] = "64M",
            ["devices"] = new JsonArray(new JsonObject { ["type"] = "net", ["name"] = "net0", ["tap"] = "vh1", ["mac"] = "52:54:00:0e:2e:11" }),
        }));
        File.WriteAllText(pair.CardConfig, WithLink(cardOriginal, new JsonObject
        {
            ["name"] = "host1", ["kind"] = "loopback", ["role"] = "driver", ["end"] = "card", ["socket"] = socketB,
            ["devices"] = new JsonArray(new JsonObject { ["type"] = "net", ["name"] = "net0", ["tap"] = "vc1" }),
        }));

        using Process flood = Process.Start(Run.Info(pair.HostNs, ["ping", "-i", "0.01", "-c", "4000", "-q", pair.CardIp]))!;
        var floodOut = new System.Text.StringBuilder();
        flood.OutputDataReceived += (_, e) =>
        {
            lock (floodOut)
            {
                floodOut.Append(e.Data).Append('\n');
            }
        };
        flood.BeginOutputReadLine();
        try
        {
            Thread.Sleep(1000);

            // Added: by NAME on the host, by --config on the card.
            (int code, string output, string err) = Run.In(null, Run.Vop("reload", "host", "--run-dir", pair.RunDir));
            Assert.True(code == 0, output + err + pair.Logs());
            Assert.Equal("vop reload: daemon host: added card1; 1 link unchanged", output.Trim());
            (code, output, err) = Run.In(null, Run.Vop("reload", "--config", pair.CardConfig));
            Assert.True(code == 0, output + err + pair.Logs());
            Assert.Equal("vop reload: daemon card: added host1; 1 link unchanged", output.Trim());

            Assert.True(Run.WaitUntil(() => Run.HasCarrier(pair.HostNs, "vh1") && Run.HasCarrier(pair.CardNs, "vc1"), TimeSpan.FromSeconds(30)), "no carrier on the added link\n" + pair.Logs());
            Run.Must(Run.In(pair.HostNs, "ip", "addr", "add", subnetB + ".1/24", "dev", "vh1"), "addr vh1");
            Run.Must(Run.In(pair.CardNs, "ip", "addr", "add", subnetB + ".2/24", "dev", "vc1"), "addr vc1");
            (code, output, err) = pair.Ping(pair.HostNs, subnetB + ".2");
            Assert.True(code == 0, "ping across the added link: " + output + err);
            (code, output, err) = Run.In(null, Run.Vop("status", "card1", "--interval", "0.1", "--run-dir", pair.RunDir));
            Assert.True(code == 0 && output.Contains("link card1 (loopback): device side, UP", StringComparison.Ordinal), output + err);

            // A config that does not validate changes nothing, on either form.
            File.WriteAllText(pair.HostConfig, hostOriginal.Replace("\"name\":\"card0\"", "\"name\":\"card0\",\"colour\":1", StringComparison.Ordinal));
            (code, output, err) = Run.In(null, Run.Vop("reload", "host", "--run-dir", pair.RunDir));
            Assert.True(code == 2, $"exit {code}: {output}{err}");
            Assert.Single(err.Trim().Split('\n'));
            Assert.Contains("links[0].colour: unknown key", err);
            Assert.EndsWith("(nothing changed)", err.Trim());
            (code, output, err) = Run.In(null, Run.Vop("reload", "--config", pair.HostConfig));
            Assert.True(code == 2, $"exit {code}: {output}{err}");
            Assert.True(Run.HasCarrier(pair.HostNs, "vh1"), "a refused reload changed the running links");

            // Removed: SIGHUP on the host (the result is in its log), --config on the card.
            File.WriteAllText(pair.HostConfig, hostOriginal);
            File.WriteAllText(pair.CardConfig, cardOriginal);
            _ = Tmds.Linux.LibC.kill(pair.Device!.Id, 1);
            Assert.True(Run.WaitUntil(() => !pair.TapExists(pair.HostNs, "vh1"), TimeSpan.FromSeconds(30)), "SIGHUP did not remove the link's TAP\n" + pair.Logs());
            // The TAP goes while the link stops; the line is logged after, through the logger's queue.
            Assert.True(
                Run.WaitUntil(() => File.ReadAllText(Path.Combine(pair.Dir, "host.log")).Contains("reload: removed card1; 1 link unchanged", StringComparison.Ordinal), TimeSpan.FromSeconds(15)),
                "SIGHUP's reload was not logged\n" + pair.Logs());
            (code, output, err) = Run.In(null, Run.Vop("reload", "--config", pair.CardConfig));
            Assert.True(code == 0, output + err);
            Assert.Equal("vop reload: daemon card: removed host1; 1 link unchanged", output.Trim());
            Assert.False(pair.TapExists(pair.CardNs, "vc1"), "the card's TAP of the removed link is still there");
            Assert.False(Directory.Exists(Path.Combine(pair.RunDir, "card1")), "the removed link left its run directory");
            (code, output, err) = Run.In(null, Run.Vop("status", "card1", "--interval", "0.1", "--run-dir", pair.RunDir));
            Assert.True(code == 1, output + err);

            // The flood on the untouched link lost nothing, and both daemons still run.
            Assert.True(flood.WaitForExit(120_000), "the flood did not finish");
            flood.WaitForExit();
            string summary;
            lock (floodOut)
            {
                summary = floodOut.ToString();
            }

            Assert.True(flood.ExitCode == 0 && summary.Contains(" 0% packet loss", StringComparison.Ordinal), summary);
            Assert.Contains("4000 packets transmitted, 4000 received", summary);
            Assert.False(pair.Device.HasExited || pair.Driver!.HasExited, pair.Logs());
        }
        finally
        {
            if (!flood.HasExited)
            {
                flood.Kill();
            }
        }
    }

    /// <summary>The config text with one more link (LinkPair writes compact JSON).</summary>
    private static string WithLink(string config, JsonObject link)
    {
        JsonNode root = JsonNode.Parse(config)!;
        root["links"]!.AsArray().Add(link);
        return root.ToJsonString();
    }
}
