using Microsoft.Win32.SafeHandles;
using Vop.Links.Interop;

namespace Vop.Appliance.Demo;

/// <summary>
/// Work on a dedicated thread that has joined a named network namespace (/run/netns/NAME, as `ip netns add`
/// makes it). On Linux the network namespace is per thread, and a socket belongs to the namespace of the
/// thread that created it, so the demo pings and streams across its two namespaces from this one process.
/// The thread ends with its work; it never returns to a pool, so no other code runs in the namespace.
/// </summary>
internal static class NetnsThread
{
    /// <summary>Starts <paramref name="body"/> on a new thread inside <paramref name="netns"/>; the task carries its result or exception.</summary>
    public static Task<T> Start<T>(string netns, string threadName, Func<T> body)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                Join(netns);
                done.SetResult(body());
            }
#pragma warning disable CA1031 // The caller reports whatever went wrong; an escaped exception would end the demo without its cleanup.
            catch (Exception e)
#pragma warning restore CA1031
            {
                done.SetException(e);
            }
        })
        {
            IsBackground = true,
            Name = threadName,
        };
        thread.Start();
        return done.Task;
    }

    private static void Join(string netns)
    {
        string path = Path.Combine("/run/netns", netns);
        using SafeFileHandle ns = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        Errno.Check(Tmds.Linux.LibC.setns((int)ns.DangerousGetHandle(), Tmds.Linux.LibC.CLONE_NEWNET), $"setns({path}, CLONE_NEWNET)");
    }
}
