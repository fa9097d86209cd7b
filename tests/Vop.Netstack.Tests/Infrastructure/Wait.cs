namespace Vop.Netstack.Tests.Infrastructure;

/// <summary>Condition waits with generous deadlines: nothing here asserts how long anything takes.</summary>
internal static class Wait
{
    public static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    /// <summary>Polls <paramref name="condition"/> until it holds; fails the test with <paramref name="what"/> at the deadline.</summary>
    public static void Until(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        long deadline = Environment.TickCount64 + (long)(timeout ?? Long).TotalMilliseconds;
        var spin = default(SpinWait);
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, $"timed out waiting for: {what}");
            spin.SpinOnce(sleep1Threshold: 20);
        }
    }
}
