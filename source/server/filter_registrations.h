#pragma once

namespace phoenix::server {

// Registers every built-in HTTP filter with http::FilterRegistry. Idempotent and thread-safe;
// config loading calls it before resolving filter names.
void RegisterBuiltinFilters();

}  // namespace phoenix::server
