namespace Vop.Appliance.Tests;

/// <summary>End-to-end tests share the 2-core machine: run them one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class EndToEnd
{
    public const string Name = "end-to-end";
}
