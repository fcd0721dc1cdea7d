#include "source/config/log_rotation.h"

namespace phoenix::config {

RotationPolicy ToRotationPolicy(const phoenix::config::v1::LogRotation& proto) {
  RotationPolicy policy;
  policy.max_bytes = uint64_t{proto.max_size_mb()} * 1024 * 1024;
  policy.daily = proto.has_daily() ? proto.daily() : true;
  policy.keep_days = proto.has_keep_days() ? proto.keep_days() : 7;
  policy.compress = proto.compress();
  return policy;
}

}  // namespace phoenix::config
