#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "phoenix/service/discovery/v1/ads.pb.h"

namespace phoenix::control_plane {

// The xDS state-of-the-world bookkeeping of one ADS stream, per type URL: what the proxy
// subscribed to, the last response sent (version, nonce, content) and what it answered
// (ACK: the version it runs; NACK: the version it refused and why). Knows nothing of gRPC, so
// the rules can be tested on their own.
class StreamSubscriptions {
 public:
  enum class RequestKind {
    kSubscribe,  // No response of this type is outstanding: answer it with the full set.
    kAck,        // Answers the last response of its type and accepts it.
    kNack,       // Answers the last response of its type and refuses it (error_detail).
    kStale,      // Answers an older response: ignored, as xDS says.
  };
  struct Answer {
    RequestKind kind;
    // The subscribed names changed with an ACK/NACK: the set must be sent again.
    bool names_changed = false;
  };
  struct TypeState {
    std::vector<std::string> resource_names;  // Empty: every resource (wildcard).
    std::string sent_version;
    std::string sent_nonce;
    std::string sent_content;  // What was sent, to tell whether a new snapshot changes it.
    std::string acked_version;
    std::string nacked_version;
    std::string last_error;
    // The last NACK on this stream, kept after later ACKs (for the admin service's Status).
    std::string last_nack_version;
    std::string last_nack_error;
  };

  // Records what `request` says and tells what it is.
  Answer OnRequest(const service::discovery::v1::DiscoveryRequest& request);
  // Whether a set of `type_url` whose content is `content` differs from the last one sent.
  bool Differs(const std::string& type_url, const std::string& content) const;
  // Records a response about to be sent; returns its nonce (unique on this stream).
  std::string RecordSent(const std::string& type_url, const std::string& version,
                         std::string content);
  // The state of `type_url`, null when not subscribed.
  const TypeState* Find(const std::string& type_url) const;
  const std::map<std::string, TypeState>& types() const { return types_; }

 private:
  std::map<std::string, TypeState> types_;
  uint64_t next_nonce_ = 1;
};

}  // namespace phoenix::control_plane
