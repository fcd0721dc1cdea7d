#pragma once

#include "phoenix/config/v1/bootstrap.pb.h"

namespace phoenix::config {

// Replaces every inline private key in `bootstrap` (secrets, and the TLS contexts of listener
// filter chains and clusters) with "[redacted]", for /config_dump. Key file names stay: they
// say where a key is, not what it is.
void RedactPrivateKeys(v1::Bootstrap* bootstrap);

}  // namespace phoenix::config
