using System.Diagnostics;
using Vop.Links.Tests.Infrastructure;

namespace Vop.Links.Tests;

/// <summary>Device side and driver side as two processes finding each other through the ivshmem-protocol socket.</summary>
public sealed class TwoProcessTests : IDisposable
{
    private readonly TempPaths _paths = new();

    public void Dispose() => _paths.Dispose();

    private static string PeerDll => Path.Combine(AppContext.BaseDirectory, "Vop.RingPeer.dll");

    private static Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(PeerDll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return Process.Start(psi)!;
    }

    private static (int Code, string Out) Finish(Process p)
    {
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            return (-1, "timed out: " + stdout.Result + stderr.Result);
        }

        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void PeersExchangeCheckedBuffersInEitherStartOrder(bool deviceFirst)
    {
        string sock = _paths.File("link.sock");
        string[] common = ["--socket", sock, "--timeout", "100"];
        string[] deviceArgs = ["--role", "device", "--count", "300000", "--payload", "64", .. common];
        string[] driverArgs = ["--role", "driver", .. common];
        Process first = deviceFirst ? Start(deviceArgs) : Start(driverArgs);
        Thread.Sleep(deviceFirst ? 200 : 1500); // the driver must retry until the device side is there
        Process second = deviceFirst ? Start(driverArgs) : Start(deviceArgs);
        using (first)
        using (second)
        {
            (int code1, string out1) = Finish(first);
            (int code2, string out2) = Finish(second);
            string all = out1 + out2;
            Assert.True(code1 == 0 && code2 == 0, all);
            Assert.Contains("driver_to_device_buffers=300000", all);
            Assert.Contains("driver_to_driver_buffers=300000", all);
            Assert.Contains("device_to_device_buffers=300000", all);
            Assert.Contains("device_to_driver_buffers=300000", all);
            Assert.Contains("peer_id=1", all);
        }

        Assert.False(File.Exists(sock), "the device side removes its socket on exit");
    }
}
