using System.CommandLine;
using System.Globalization;
using Vop.Links.Loopback;
using Vop.TestSupport.RingTest;

// One end of a ring-test link over the loopback (ivshmem-protocol) link kind, for the two-process tests
// and tests/bench/ring.sh. Prints one name=value line per figure; exits 1 when a check failed.
var role = new Option<string>("--role") { Description = "device or driver", Required = true };
var socket = new Option<string>("--socket") { Description = "ivshmem-protocol socket path", Required = true };
var count = new Option<ulong>("--count") { Description = "buffers per direction (device side decides)", DefaultValueFactory = _ => 1_000_000 };
var payload = new Option<uint>("--payload") { Description = "payload bytes per buffer (device side decides)", DefaultValueFactory = _ => 64 };
var directions = new Option<string>("--directions") { Description = "to-device, to-driver or both", DefaultValueFactory = _ => "both" };
var queueSize = new Option<ushort>("--queue-size") { DefaultValueFactory = _ => 256 };
var windowSize = new Option<ulong>("--window-mib") { DefaultValueFactory = _ => 16 };
var vectors = new Option<int>("--vectors") { DefaultValueFactory = _ => 4 };
var timeout = new Option<int>("--timeout") { Description = "seconds before giving up", DefaultValueFactory = _ => 120 };
var noEventIdx = new Option<bool>("--no-event-idx") { Description = "driver side does not negotiate EVENT_IDX" };

var root = new RootCommand("vop ring-test peer") { role, socket, count, payload, directions, queueSize, windowSize, vectors, timeout, noEventIdx };
root.SetAction(parse =>
{
    using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(parse.GetValue(timeout)));
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;
        cts.Cancel();
    };

    string prefix = parse.GetValue(role)!;
    IReadOnlyList<RingTestResult> results;
    try
    {
        if (prefix == "device")
        {
            RingTestDirections dirs = parse.GetValue(directions) switch
            {
                "to-device" => RingTestDirections.ToDevice,
                "to-driver" => RingTestDirections.ToDriver,
                "both" => RingTestDirections.Both,
                var other => throw new ArgumentException($"--directions: '{other}' is not to-device, to-driver or both"),
            };
            using var end = new LoopbackDeviceEnd("ringpeer", parse.GetValue(socket)!, parse.GetValue(windowSize) << 20, parse.GetValue(vectors));
            var device = new RingTestDevice(end, new RingTestConfig(parse.GetValue(payload), dirs, parse.GetValue(count)), parse.GetValue(queueSize));
            device.Insert();
            end.Start();
            Console.WriteLine("ready=1");
            results = device.Run(cts.Token);
            Print(prefix, "notify_sent_to_device_queue", device.ToDeviceStats.NotificationsSent);
            Print(prefix, "doorbells_to_device_queue", device.ToDeviceStats.DoorbellsReceived);
            // Give the driver a moment to reap the last completions before the window goes away.
            WaitForDriverToLeave(end, cts.Token);
        }
        else if (prefix == "driver")
        {
            using LoopbackDriverEnd end = LoopbackDriverEnd.Connect(parse.GetValue(socket)!, parse.GetValue(vectors), cts.Token);
            RingTestDriver driver = RingTestDriver.Attach(end, cts.Token, eventIdx: !parse.GetValue(noEventIdx));
            Console.WriteLine($"peer_id={end.OwnId}");
            results = driver.Run(cts.Token);
            Print(prefix, "kicks_sent", driver.ToDeviceStats.NotificationsSent);
            Print(prefix, "kicks_suppressed", driver.ToDeviceStats.NotificationsSuppressed);
            Print(prefix, "interrupts_received", driver.ToDriverStats.DoorbellsReceived + driver.ToDeviceStats.DoorbellsReceived);
        }
        else
        {
            Console.Error.WriteLine($"vop-ringpeer: --role must be device or driver, not '{prefix}'");
            return 2;
        }
    }
    catch (OperationCanceledException)
    {
        Console.Error.WriteLine($"vop-ringpeer: {prefix}: timed out");
        return 1;
    }
    catch (Exception e) when (e is IOException or InvalidDataException or TimeoutException or ArgumentException)
    {
        Console.Error.WriteLine($"vop-ringpeer: {prefix}: {e.Message}");
        return 1;
    }

    int rc = 0;
    foreach (RingTestResult r in results.OrderBy(r => r.Direction))
    {
        Print(prefix, $"{r.Direction}_buffers", r.Buffers);
        Print(prefix, $"{r.Direction}_mpps", r.MegaBuffersPerSecond.ToString("F2", CultureInfo.InvariantCulture));
        if (r.Error is not null)
        {
            Console.Error.WriteLine($"vop-ringpeer: {prefix}: {r.Direction}: {r.Error}");
            rc = 1;
        }
    }

    Console.WriteLine($"{prefix}_ok={(rc == 0 ? 1 : 0)}");
    return rc;
});

return root.Parse(args).Invoke();

static void Print(string prefix, string name, object value) =>
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{prefix}_{name}={value}"));

static void WaitForDriverToLeave(LoopbackDeviceEnd end, CancellationToken cancel)
{
    long deadline = Environment.TickCount64 + 10_000;
    while (end.PeerAttached && Environment.TickCount64 < deadline && !cancel.IsCancellationRequested)
    {
        Thread.Sleep(10);
    }
}
