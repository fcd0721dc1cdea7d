#pragma once

namespace phoenix::server {

// Registers every built-in transport socket with network::TransportSocketRegistry.
// Idempotent and thread-safe; config loading calls it before resolving transport socket names.
void RegisterBuiltinTransportSockets();

}  // namespace phoenix::server
