using System.Text.Json;
using System.Text.Json.Serialization;

namespace Vop.Appliance.Config;

/// <summary>
/// The config file's JSON contract, generated at build time (no reflection, so it works in the Native AOT
/// build): camelCase keys, unknown keys refused, comments and trailing commas allowed.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true)]
[JsonSerializable(typeof(VopConfigFile))]
internal sealed partial class ConfigJson : JsonSerializerContext;
