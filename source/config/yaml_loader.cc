#include "source/config/yaml_loader.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/duration.pb.h"
#include "source/common/strings.h"
#include "yaml-cpp/yaml.h"

namespace phoenix::config {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr std::string_view kTypeUrlPrefix = "type.googleapis.com/";

SourceLocation LocationOf(const YAML::Node& node) {
  YAML::Mark mark = node.Mark();
  return SourceLocation{mark.line + 1, mark.column + 1};
}

// A plausible proto field name (letters, digits, '_', or "@type"), short: what an error may
// quote back.
bool LooksLikeFieldName(std::string_view name) {
  if (name == "@type") return true;
  if (name.empty() || name.size() > 64 || !absl::ascii_isalpha(name[0])) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

std::string FieldPath(const std::string& parent, std::string_view field) {
  return parent.empty() ? std::string(field) : absl::StrCat(parent, ".", AbslView(field));
}

bool IsWrapper(const Descriptor* d) {
  return d->file()->name() == "google/protobuf/wrappers.proto";
}

// Walks one YAML document into one message. Errors accumulate in `errors_`.
class YamlConverter {
 public:
  YamlConverter(SourceMap* source_map, ConfigErrors* errors)
      : source_map_(source_map), errors_(errors) {}

  void ConvertMessage(const YAML::Node& node, Message* message, const std::string& path) {
    const Descriptor* descriptor = message->GetDescriptor();
    if (descriptor->full_name() == "google.protobuf.Duration") {
      ConvertDuration(node, message, path);
      return;
    }
    if (descriptor->full_name() == "google.protobuf.Any") {
      ConvertAny(node, message, path);
      return;
    }
    if (IsWrapper(descriptor)) {
      const FieldDescriptor* value = descriptor->FindFieldByName("value");
      ConvertScalar(node, message, value, path);
      return;
    }
    if (!node.IsMap()) {
      Error(node, path, absl::StrCat("expected a mapping for ", descriptor->full_name()));
      return;
    }
    absl::flat_hash_set<std::string> seen_keys;
    absl::flat_hash_set<const google::protobuf::OneofDescriptor*> seen_oneofs;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;
      std::string name = key.IsScalar() ? key.Scalar() : "";
      if (!LooksLikeFieldName(name)) {
        // Never echo it: a file that is not a config at all (a password file, a key) must not
        // have its lines printed back.
        Error(key, path, "not a config field here (expected a field name)");
        continue;
      }
      std::string field_path = FieldPath(path, name);
      if (!seen_keys.insert(name).second) {
        Error(key, field_path, "duplicate key");
        continue;
      }
      const FieldDescriptor* field = FindField(descriptor, name);
      if (field == nullptr) {
        std::vector<std::string> names;
        for (int i = 0; i < descriptor->field_count(); ++i) {
          names.push_back(descriptor->field(i)->name());
        }
        std::string message_text =
            absl::StrCat("unknown field '", name, "' in ", descriptor->full_name());
        std::string suggestion = NearestName(name, names);
        if (!suggestion.empty())
          absl::StrAppend(&message_text, "; did you mean '", suggestion, "'?");
        Error(key, field_path, message_text);
        continue;
      }
      Record(key, field_path);
      const YAML::Node value = it->second;
      if (value.IsNull()) continue;  // "field:" with nothing: leave it unset.
      const google::protobuf::OneofDescriptor* oneof = field->real_containing_oneof();
      if (oneof != nullptr && !seen_oneofs.insert(oneof).second) {
        Error(key, field_path, absl::StrCat("only one field of '", oneof->name(), "' may be set"));
        continue;
      }
      ConvertField(value, message, field, field_path);
    }
  }

 private:
  static const FieldDescriptor* FindField(const Descriptor* descriptor, const std::string& name) {
    if (const FieldDescriptor* f = descriptor->FindFieldByName(name)) return f;
    for (int i = 0; i < descriptor->field_count(); ++i) {
      if (descriptor->field(i)->json_name() == name) return descriptor->field(i);
    }
    return nullptr;
  }

  void ConvertField(const YAML::Node& node, Message* message, const FieldDescriptor* field,
                    const std::string& path) {
    const Reflection* reflection = message->GetReflection();
    if (field->is_map()) {
      if (!node.IsMap()) {
        Error(node, path, "expected a mapping");
        return;
      }
      for (auto it = node.begin(); it != node.end(); ++it) {
        std::string entry_path = absl::StrCat(path, "[", it->first.Scalar(), "]");
        Message* entry = reflection->AddMessage(message, field);
        const Descriptor* entry_type = field->message_type();
        ConvertScalar(it->first, entry, entry_type->map_key(), entry_path);
        const FieldDescriptor* value_field = entry_type->map_value();
        if (value_field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          ConvertMessage(it->second, entry->GetReflection()->MutableMessage(entry, value_field),
                         entry_path);
        } else {
          ConvertScalar(it->second, entry, value_field, entry_path);
        }
      }
      return;
    }
    if (field->is_repeated()) {
      if (!node.IsSequence()) {
        Error(node, path, "expected a list");
        return;
      }
      for (size_t i = 0; i < node.size(); ++i) {
        std::string item_path = absl::StrCat(path, "[", i, "]");
        Record(node[i], item_path);
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          ConvertMessage(node[i], reflection->AddMessage(message, field), item_path);
        } else {
          ConvertScalar(node[i], message, field, item_path);
        }
      }
      return;
    }
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      ConvertMessage(node, reflection->MutableMessage(message, field), path);
    } else {
      ConvertScalar(node, message, field, path);
    }
  }

  // Sets (or, for repeated fields, appends) one scalar.
  void ConvertScalar(const YAML::Node& node, Message* message, const FieldDescriptor* field,
                     const std::string& path) {
    if (!node.IsScalar()) {
      Error(node, path, absl::StrCat("expected a ", TypeName(field), " value"));
      return;
    }
    const std::string& text = node.Scalar();
    const Reflection* r = message->GetReflection();
    bool repeated = field->is_repeated();
    auto bad = [&](std::string_view what) {
      Error(node, path, absl::StrCat("invalid ", AbslView(what), " '", text, "'"));
    };
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        repeated ? r->AddString(message, field, text) : r->SetString(message, field, text);
        return;
      case FieldDescriptor::CPPTYPE_BOOL: {
        bool v;
        if (text == "true") {
          v = true;
        } else if (text == "false") {
          v = false;
        } else {
          bad("boolean (want true or false)");
          return;
        }
        repeated ? r->AddBool(message, field, v) : r->SetBool(message, field, v);
        return;
      }
      case FieldDescriptor::CPPTYPE_INT32: {
        int32_t v;
        if (!absl::SimpleAtoi(text, &v)) return bad("int32");
        repeated ? r->AddInt32(message, field, v) : r->SetInt32(message, field, v);
        return;
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t v;
        if (!absl::SimpleAtoi(text, &v)) return bad("int64");
        repeated ? r->AddInt64(message, field, v) : r->SetInt64(message, field, v);
        return;
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        uint32_t v;
        if (text.starts_with("-") || !absl::SimpleAtoi(text, &v)) return bad("uint32");
        repeated ? r->AddUInt32(message, field, v) : r->SetUInt32(message, field, v);
        return;
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t v;
        if (text.starts_with("-") || !absl::SimpleAtoi(text, &v)) return bad("uint64");
        repeated ? r->AddUInt64(message, field, v) : r->SetUInt64(message, field, v);
        return;
      }
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double v;
        if (!absl::SimpleAtod(text, &v) || !std::isfinite(v)) return bad("number");
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
          repeated ? r->AddDouble(message, field, v) : r->SetDouble(message, field, v);
        } else {
          float f = static_cast<float>(v);
          repeated ? r->AddFloat(message, field, f) : r->SetFloat(message, field, f);
        }
        return;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const auto* enum_type = field->enum_type();
        const auto* value = enum_type->FindValueByName(text);
        int number;
        if (value == nullptr && absl::SimpleAtoi(text, &number)) {
          value = enum_type->FindValueByNumber(number);
        }
        if (value == nullptr) {
          std::vector<std::string> names;
          for (int i = 0; i < enum_type->value_count(); ++i) {
            names.push_back(enum_type->value(i)->name());
          }
          std::string msg = absl::StrCat("unknown value '", text, "' for ", enum_type->name(),
                                         "; valid: ", absl::StrJoin(names, ", "));
          Error(node, path, msg);
          return;
        }
        repeated ? r->AddEnum(message, field, value) : r->SetEnum(message, field, value);
        return;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        Error(node, path, "expected a mapping");
        return;
    }
  }

  void ConvertDuration(const YAML::Node& node, Message* message, const std::string& path) {
    int64_t seconds;
    int32_t nanos;
    if (!node.IsScalar() || !ParseDuration(node.Scalar(), &seconds, &nanos)) {
      Error(node, path, "invalid duration; write e.g. \"5s\", \"0.25s\" or \"250ms\"");
      return;
    }
    auto* duration = static_cast<google::protobuf::Duration*>(message);
    duration->set_seconds(seconds);
    duration->set_nanos(nanos);
  }

  void ConvertAny(const YAML::Node& node, Message* message, const std::string& path) {
    if (!node.IsMap() || !node["@type"] || !node["@type"].IsScalar()) {
      Error(node, path, "typed config needs an \"@type\" field");
      return;
    }
    std::string type_url = node["@type"].Scalar();
    absl::string_view type_name = type_url;
    if (!absl::ConsumePrefix(&type_name, AbslView(kTypeUrlPrefix))) {
      Error(node["@type"], FieldPath(path, "@type"),
            absl::StrCat("type URL must start with ", AbslView(kTypeUrlPrefix)));
      return;
    }
    const Descriptor* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(
            std::string(type_name));
    if (descriptor == nullptr) {
      Error(node["@type"], FieldPath(path, "@type"),
            absl::StrCat("unknown type '", type_name, "'"));
      return;
    }
    std::unique_ptr<Message> inner(
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor)->New());
    YAML::Node rest(YAML::NodeType::Map);
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it->first.Scalar() != "@type") rest[it->first] = it->second;
    }
    ConvertMessage(rest, inner.get(), path);
    auto* any = static_cast<google::protobuf::Any*>(message);
    any->set_type_url(type_url);
    any->set_value(inner->SerializeAsString());
  }

  static std::string TypeName(const FieldDescriptor* field) {
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_ENUM) return "enum";
    return field->cpp_type_name();
  }

  void Record(const YAML::Node& node, const std::string& path) {
    if (source_map_ != nullptr) source_map_->Record(path, LocationOf(node));
  }

  void Error(const YAML::Node& node, const std::string& path, std::string_view message) {
    errors_->AddAt(LocationOf(node), path, message);
  }

  SourceMap* source_map_;
  ConfigErrors* errors_;
};

absl::Status LoadYamlNode(const YAML::Node& root, Message* message, SourceMap* source_map) {
  ConfigErrors errors(source_map);
  if (!root.IsDefined() || root.IsNull()) {
    errors.AddAt({1, 1}, "", "the config is empty");
    return errors.ToStatus();
  }
  YamlConverter converter(source_map, &errors);
  converter.ConvertMessage(root, message, "");
  return errors.ToStatus();
}

}  // namespace

bool ParseDuration(std::string_view input, int64_t* seconds, int32_t* nanos) {
  absl::string_view text = AbslView(input);
  double scale;
  if (absl::ConsumeSuffix(&text, "ms")) {
    scale = 1e-3;
  } else if (absl::ConsumeSuffix(&text, "s")) {
    scale = 1;
  } else {
    return false;
  }
  double value;
  if (text.empty() || text[0] == '-' || text[0] == '+' || !absl::SimpleAtod(text, &value) ||
      !std::isfinite(value) || value > 315576000000.0) {
    return false;
  }
  double total = value * scale;
  *seconds = static_cast<int64_t>(total);
  *nanos = static_cast<int32_t>(std::llround((total - *seconds) * 1e9));
  if (*nanos >= 1000000000) {
    ++*seconds;
    *nanos -= 1000000000;
  }
  return true;
}

absl::Status LoadYamlString(std::string_view yaml, Message* message, SourceMap* source_map) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    ConfigErrors errors(source_map);
    errors.AddAt({e.mark.line + 1, e.mark.column + 1}, "",
                 absl::StrCat("YAML syntax error: ", e.msg));
    return errors.ToStatus();
  }
  try {
    return LoadYamlNode(root, message, source_map);
  } catch (const YAML::Exception& e) {
    ConfigErrors errors(source_map);
    errors.AddAt({e.mark.line + 1, e.mark.column + 1}, "", absl::StrCat("YAML error: ", e.msg));
    return errors.ToStatus();
  }
}

absl::Status LoadYamlFile(const std::string& path, Message* message, SourceMap* source_map) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", strerror(errno)));
  }
  if (S_ISDIR(info.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory; give a YAML file"));
  }
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", strerror(errno)));
  std::stringstream contents;
  contents << in.rdbuf();
  return LoadYamlString(contents.str(), message, source_map);
}

}  // namespace phoenix::config
