#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "source/common/config_errors.h"

namespace phoenix::config {

// Reads YAML written in the proto3 JSON mapping into a protobuf message, walking the YAML
// tree against the message descriptor so every error can name file:line:column and the
// field path. Unknown fields are errors (with a did-you-mean); so are type mismatches and
// two members of one oneof. Supports Duration ("1.5s", "250ms"), wrappers and Any
// ("@type": type.googleapis.com/<message>).
//
// On success `source_map` holds the location of every field, for later validation errors.
absl::Status LoadYamlFile(const std::string& path, google::protobuf::Message* message,
                          SourceMap* source_map);
absl::Status LoadYamlString(std::string_view yaml, google::protobuf::Message* message,
                            SourceMap* source_map);

// Parses a proto3 JSON duration ("1s", "0.25s") or a millisecond form ("250ms").
bool ParseDuration(std::string_view text, int64_t* seconds, int32_t* nanos);

}  // namespace phoenix::config
