#pragma once

// Reads the `[schemas]` section (the unknown-type policy and one `[schemas.<type>]` section per
// event type) into a schema registry.

#include "messages/schema.hpp"

#include <caf/settings.hpp>

#include <string>

namespace sluice {

/// Loads `section` (the content of `[schemas]`) into `out`. Keys holding a map are event types
/// (`[schemas.play]`); the others are `unknown-types` and `version-attribute`. Returns an error
/// text naming the key (`schemas.play.fields.position_ms.min`), empty on success.
std::string load_schemas(const caf::settings& section, schema_registry& out);

/// `--help` text of the per-type keys and the field rules.
std::string schemas_help();

} // namespace sluice
