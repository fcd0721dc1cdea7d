#include "source/http/access_log_format.h"

#include <algorithm>
#include <ctime>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "source/common/strings.h"
#include "source/network/connection.h"

namespace phoenix::http {
namespace {

std::string FormatTimestamp(int64_t wall_us) {
  time_t seconds = wall_us / 1000000;
  tm utc;
  gmtime_r(&seconds, &utc);
  char buffer[32];
  strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%S", &utc);
  return absl::StrFormat("%s.%03dZ", buffer, static_cast<int>((wall_us / 1000) % 1000));
}

std::string_view OrDash(std::string_view s) { return s.empty() ? std::string_view("-") : s; }

class DefaultFormatter : public AccessLogFormatter {
 public:
  std::string Format(const AccessLogContext& f) const override {
    return absl::StrFormat(
        "[%s] \"%s %s %s\" %d %s %d %d %d \"%s\" \"%s\" \"%s\" \"%s\" \"%s\" %s \"%s\" \"%s\"\n",
        FormatTimestamp(f.start_wall_us), AbslView(OrDash(f.method)), AbslView(OrDash(f.path)),
        AbslView(ProtocolName(f.protocol)), f.code, AbslView(OrDash(f.flags)), f.bytes_received,
        f.bytes_sent, f.duration_ms, AbslView(OrDash(f.xff)), AbslView(OrDash(f.user_agent)),
        AbslView(OrDash(f.request_id)), AbslView(OrDash(f.authority)),
        AbslView(OrDash(f.upstream_host)),
        f.tls != nullptr ? AbslView(f.tls->version) : absl::string_view("-"),
        AbslView(OrDash(f.principal)), AbslView(OrDash(f.policy_rule)));
  }
};

// What one piece of a format prints.
enum class Command {
  kLiteral,
  kStartTime,
  kRequestHeader,
  kResponseHeader,
  kResponseCode,
  kResponseFlags,
  kDuration,
  kBytesReceived,
  kBytesSent,
  kProtocol,
  kUpstreamHost,
  kRouteName,
  kDownstreamRemoteAddress,
  kDownstreamRemoteAddressWithoutPort,
  kDownstreamPeerUriSan,
  kDownstreamTlsVersion,
  kPolicyRule,
};

struct Piece {
  Command command = Command::kLiteral;
  std::string text;       // kLiteral: the text; kStartTime: a strftime format, or empty.
  std::string header;     // REQ/RESP: the header (lowercase).
  std::string fallback;   // REQ/RESP: the header used when `header` is absent.
  size_t max_length = 0;  // REQ/RESP: truncate to this many bytes; 0: whole.
};

bool IsNumeric(Command command) {
  return command == Command::kResponseCode || command == Command::kDuration ||
         command == Command::kBytesReceived || command == Command::kBytesSent;
}

struct SimpleCommand {
  std::string_view name;
  Command command;
};
constexpr SimpleCommand kSimpleCommands[] = {
    {"RESPONSE_CODE", Command::kResponseCode},
    {"RESPONSE_FLAGS", Command::kResponseFlags},
    {"DURATION", Command::kDuration},
    {"BYTES_RECEIVED", Command::kBytesReceived},
    {"BYTES_SENT", Command::kBytesSent},
    {"PROTOCOL", Command::kProtocol},
    {"UPSTREAM_HOST", Command::kUpstreamHost},
    {"ROUTE_NAME", Command::kRouteName},
    {"DOWNSTREAM_REMOTE_ADDRESS", Command::kDownstreamRemoteAddress},
    {"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", Command::kDownstreamRemoteAddressWithoutPort},
    {"DOWNSTREAM_PEER_URI_SAN", Command::kDownstreamPeerUriSan},
    {"DOWNSTREAM_TLS_VERSION", Command::kDownstreamTlsVersion},
    {"POLICY_RULE", Command::kPolicyRule},
};

// Parses the inside of one %...% command.
absl::StatusOr<Piece> ParseCommand(std::string_view command) {
  Piece piece;
  for (const auto& simple : kSimpleCommands) {
    if (command == simple.name) {
      piece.command = simple.command;
      return piece;
    }
  }
  if (command == "START_TIME") {
    piece.command = Command::kStartTime;
    return piece;
  }
  if (command.starts_with("START_TIME(") && command.ends_with(")")) {
    piece.command = Command::kStartTime;
    piece.text = std::string(command.substr(11, command.size() - 12));
    return piece;
  }
  bool request = command.starts_with("REQ(");
  if (request || command.starts_with("RESP(")) {
    piece.command = request ? Command::kRequestHeader : Command::kResponseHeader;
    std::string_view rest = command.substr(request ? 4 : 5);
    size_t close = rest.find(')');
    if (close == std::string_view::npos || close == 0) {
      return absl::InvalidArgumentError(absl::StrCat("malformed %", AbslView(command), "%"));
    }
    std::string_view names = rest.substr(0, close);
    std::string_view after = rest.substr(close + 1);
    size_t question = names.find('?');
    piece.header = absl::AsciiStrToLower(AbslView(names.substr(0, question)));
    if (question != std::string_view::npos) {
      piece.fallback = absl::AsciiStrToLower(AbslView(names.substr(question + 1)));
    }
    if (!after.empty()) {
      uint32_t length = 0;
      if (after[0] != ':' || !absl::SimpleAtoi(AbslView(after.substr(1)), &length) || length == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("malformed length in %", AbslView(command), "%"));
      }
      piece.max_length = length;
    }
    if (piece.header.empty() || (question != std::string_view::npos && piece.fallback.empty())) {
      return absl::InvalidArgumentError(
          absl::StrCat("empty header name in %", AbslView(command), "%"));
    }
    return piece;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown access log operator %", AbslView(command), "%"));
}

absl::StatusOr<std::vector<Piece>> ParsePieces(std::string_view format) {
  std::vector<Piece> pieces;
  auto literal = [&](std::string_view text) {
    if (text.empty()) return;
    if (pieces.empty() || pieces.back().command != Command::kLiteral) pieces.emplace_back();
    pieces.back().text.append(text);
  };
  while (!format.empty()) {
    size_t percent = format.find('%');
    if (percent == std::string_view::npos) {
      literal(format);
      break;
    }
    literal(format.substr(0, percent));
    format.remove_prefix(percent + 1);
    if (!format.empty() && format[0] == '%') {
      literal("%");
      format.remove_prefix(1);
      continue;
    }
    // START_TIME's strftime format holds '%'s of its own: its command ends at ")%".
    size_t end = format.starts_with("START_TIME(") ? format.find(")%") : format.find('%');
    if (end == std::string_view::npos) {
      return absl::InvalidArgumentError("unterminated % operator (write %% for a literal '%')");
    }
    if (format.starts_with("START_TIME(")) ++end;
    auto piece = ParseCommand(format.substr(0, end));
    if (!piece.ok()) return piece.status();
    pieces.push_back(*std::move(piece));
    format.remove_prefix(end + 1);
  }
  return pieces;
}

std::optional<std::string_view> ResponseHeader(const AccessLogContext& c, std::string_view name) {
  if (c.response_headers == nullptr) return std::nullopt;
  for (const auto& [header, value] : *c.response_headers) {
    if (header == name) return std::string_view(value);
  }
  return std::nullopt;
}

std::optional<std::string_view> RequestHeader(const AccessLogContext& c, std::string_view name) {
  if (name == ":method") return c.method;
  if (name == ":path") return c.path;
  if (name == ":authority" || name == "host") return c.authority;
  if (c.request == nullptr) return std::nullopt;
  std::string_view value;
  if (!c.request->Lookup(name, &value)) return std::nullopt;
  return value;
}

// The value of a non-literal piece, or nullopt when absent. `scratch` holds formatted values.
std::optional<std::string_view> Evaluate(const Piece& piece, const AccessLogContext& c,
                                         std::string* scratch) {
  auto present = [](std::string_view s) -> std::optional<std::string_view> {
    if (s.empty()) return std::nullopt;
    return s;
  };
  auto number = [&](int64_t n) -> std::optional<std::string_view> {
    *scratch = absl::StrCat(n);
    return std::string_view(*scratch);
  };
  switch (piece.command) {
    case Command::kLiteral:
      return piece.text;
    case Command::kStartTime: {
      if (piece.text.empty()) {
        *scratch = FormatTimestamp(c.start_wall_us);
      } else {
        time_t seconds = c.start_wall_us / 1000000;
        tm utc;
        gmtime_r(&seconds, &utc);
        char buffer[256];
        size_t n = strftime(buffer, sizeof(buffer), piece.text.c_str(), &utc);
        scratch->assign(buffer, n);
      }
      return std::string_view(*scratch);
    }
    case Command::kRequestHeader:
    case Command::kResponseHeader: {
      auto lookup = piece.command == Command::kRequestHeader ? RequestHeader : ResponseHeader;
      std::optional<std::string_view> value = lookup(c, piece.header);
      if ((!value || value->empty()) && !piece.fallback.empty()) value = lookup(c, piece.fallback);
      if (!value || value->empty()) return std::nullopt;
      if (piece.max_length > 0 && value->size() > piece.max_length) {
        value = value->substr(0, piece.max_length);
      }
      return value;
    }
    case Command::kResponseCode:
      return number(c.code);
    case Command::kResponseFlags:
      return present(c.flags);
    case Command::kDuration:
      return number(c.duration_ms);
    case Command::kBytesReceived:
      return number(static_cast<int64_t>(c.bytes_received));
    case Command::kBytesSent:
      return number(static_cast<int64_t>(c.bytes_sent));
    case Command::kProtocol:
      return ProtocolName(c.protocol);
    case Command::kUpstreamHost:
      return present(c.upstream_host);
    case Command::kRouteName:
      return present(c.route_name);
    case Command::kDownstreamRemoteAddress:
      return present(c.downstream_address);
    case Command::kDownstreamRemoteAddressWithoutPort:
      return present(AddressHost(c.downstream_address));
    case Command::kDownstreamPeerUriSan:
      return present(c.principal);
    case Command::kDownstreamTlsVersion:
      return c.tls != nullptr ? present(c.tls->version) : std::nullopt;
    case Command::kPolicyRule:
      return present(c.policy_rule);
  }
  return std::nullopt;
}

void AppendPieces(const std::vector<Piece>& pieces, const AccessLogContext& c, std::string* out) {
  std::string scratch;
  for (const Piece& piece : pieces) {
    std::optional<std::string_view> value = Evaluate(piece, c, &scratch);
    out->append(value ? *value : std::string_view("-"));
  }
}

void CollectResponseHeaders(const std::vector<Piece>& pieces, std::vector<std::string>* names) {
  for (const Piece& piece : pieces) {
    if (piece.command != Command::kResponseHeader) continue;
    for (const std::string* name : {&piece.header, &piece.fallback}) {
      if (name->empty()) continue;
      if (std::find(names->begin(), names->end(), *name) == names->end()) {
        names->push_back(*name);
      }
    }
  }
}

class TextFormatter : public AccessLogFormatter {
 public:
  explicit TextFormatter(std::vector<Piece> pieces) : pieces_(std::move(pieces)) {
    CollectResponseHeaders(pieces_, &response_headers_);
  }
  std::string Format(const AccessLogContext& context) const override {
    std::string line;
    AppendPieces(pieces_, context, &line);
    if (line.empty() || line.back() != '\n') line.push_back('\n');
    return line;
  }

 private:
  std::vector<Piece> pieces_;
};

// A JSON string of `s`: no request byte can make the line invalid JSON.
void AppendJsonString(std::string_view s, std::string* out) {
  absl::StrAppend(out, "\"", JsonEscape(s, /*ascii_only=*/true), "\"");
}

class JsonFormatter : public AccessLogFormatter {
 public:
  explicit JsonFormatter(std::vector<std::pair<std::string, std::vector<Piece>>> fields)
      : fields_(std::move(fields)) {
    for (const auto& field : fields_) CollectResponseHeaders(field.second, &response_headers_);
  }
  std::string Format(const AccessLogContext& context) const override {
    std::string line = "{";
    std::string scratch, value;
    for (const auto& [key, pieces] : fields_) {
      if (line.size() > 1) line.push_back(',');
      AppendJsonString(key, &line);
      line.push_back(':');
      if (pieces.size() == 1 && pieces[0].command != Command::kLiteral) {
        std::optional<std::string_view> one = Evaluate(pieces[0], context, &scratch);
        if (!one) {
          line.append("null");
        } else if (IsNumeric(pieces[0].command)) {
          line.append(*one);
        } else {
          AppendJsonString(*one, &line);
        }
        continue;
      }
      value.clear();
      AppendPieces(pieces, context, &value);
      AppendJsonString(value, &line);
    }
    line.append("}\n");
    return line;
  }

 private:
  std::vector<std::pair<std::string, std::vector<Piece>>> fields_;
};

}  // namespace

std::unique_ptr<AccessLogFormatter> DefaultAccessLogFormatter() {
  return std::make_unique<DefaultFormatter>();
}

absl::StatusOr<std::unique_ptr<AccessLogFormatter>> ParseTextAccessLogFormat(
    std::string_view format) {
  auto pieces = ParsePieces(format);
  if (!pieces.ok()) return pieces.status();
  return std::make_unique<TextFormatter>(*std::move(pieces));
}

absl::StatusOr<std::unique_ptr<AccessLogFormatter>> ParseJsonAccessLogFormat(
    const std::map<std::string, std::string>& fields) {
  if (fields.empty()) return absl::InvalidArgumentError("a JSON format needs at least one key");
  std::vector<std::pair<std::string, std::vector<Piece>>> parsed;
  for (const auto& [key, format] : fields) {
    auto pieces = ParsePieces(format);
    if (!pieces.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("key '", key, "': ", pieces.status().message()));
    }
    parsed.emplace_back(key, *std::move(pieces));
  }
  return std::make_unique<JsonFormatter>(std::move(parsed));
}

}  // namespace phoenix::http
