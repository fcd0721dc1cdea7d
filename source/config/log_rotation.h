#pragma once

#include "phoenix/config/v1/log_rotation.pb.h"
#include "source/common/rotating_file.h"

namespace phoenix::config {

// The RotationPolicy a LogRotation config asks for, with the defaults filled in (daily, 7
// days kept). Shared by access logs and the logs of supervised apps.
RotationPolicy ToRotationPolicy(const phoenix::config::v1::LogRotation& proto);

}  // namespace phoenix::config
