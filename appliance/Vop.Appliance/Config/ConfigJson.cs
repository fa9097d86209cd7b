using System.Text.Json;
using System.Text.Json.Serialization;

namespace Vop.Appliance.Config;

/// <summary>
/// The config file's JSON contract, generated at build time (no reflection, so it works in the Native AOT
/// build): camelCase keys, unknown keys refused, trailing commas refused (not JSON, and often what a
/// half-deleted entry leaves); comments (// and /* */) allowed and skipped, deliberately: a config is
/// written by hand, and docs/operations.md says so.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = false)]
[JsonSerializable(typeof(VopConfigFile))]
[JsonSerializable(typeof(LinkConfigFile))]
internal sealed partial class ConfigJson : JsonSerializerContext;
