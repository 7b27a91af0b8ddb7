#pragma once

// What the gateway checks and adds at ingest: schemas (validation) and enrichment.

#include "messages/enrich.hpp"
#include "messages/schema.hpp"

namespace sluice {

/// The ingest-time data-quality configuration of a node: built once from the config (`[schemas]`,
/// `[enrich]`), then shared read-only by every gateway io thread.
struct ingest_quality {
  schema_registry schemas;
  enricher enrich;
};

} // namespace sluice
