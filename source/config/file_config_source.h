#pragma once

#include <map>
#include <string>

#include "source/config/config_source.h"

namespace phoenix::config {

// The YAML bootstrap file as a config source: every Refresh() reads the whole file and
// delivers all of its resources at once. A type's version is a digest of its resources, so
// it changes only when that type's content does.
class FileConfigSource : public ConfigSource {
 public:
  explicit FileConfigSource(std::string path) : path_(std::move(path)) {}

  absl::Status Start(ConfigUpdateCallbacks& callbacks) override;
  absl::Status Refresh() override;
  bool dynamic() const override { return false; }
  std::map<ResourceType, TypeStatus> status() const override { return status_; }
  std::string description() const override { return "file " + path_; }

 private:
  std::string path_;
  ConfigUpdateCallbacks* callbacks_ = nullptr;
  std::map<ResourceType, TypeStatus> status_;
};

}  // namespace phoenix::config
