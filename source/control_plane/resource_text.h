#pragma once

#include <string>

#include "source/control_plane/resource_snapshot.h"

namespace phoenix::control_plane {

enum class TextFormat { kYaml, kJson };

// A served resource as people read it: its message in the proto3 JSON mapping (field names
// as the YAML files write them), or that as block YAML; inline private keys replaced by
// "[redacted]" (config::RedactPrivateKeys), since the text leaves phoenix-cp (phoenixctl get,
// diffs, the audit log).
std::string RenderResource(const Resource& resource, ResourceType type, TextFormat format);

// Any message as the same text, nothing redacted (a resource file phoenix-cp rewrites).
std::string RenderMessage(const google::protobuf::Message& message, TextFormat format);

}  // namespace phoenix::control_plane
