#include "source/control_plane/stream_subscriptions.h"

#include "absl/strings/str_cat.h"

namespace phoenix::control_plane {

StreamSubscriptions::Answer StreamSubscriptions::OnRequest(
    const service::discovery::v1::DiscoveryRequest& request) {
  std::vector<std::string> names(request.resource_names().begin(), request.resource_names().end());
  auto it = types_.find(request.type_url());
  if (it == types_.end() || request.response_nonce().empty() || it->second.sent_nonce.empty()) {
    // A first request (or one that answers nothing): a subscription, answered in full.
    TypeState& state = types_[request.type_url()];
    state.resource_names = std::move(names);
    if (!request.version_info().empty() && state.acked_version.empty()) {
      state.acked_version = request.version_info();  // What a reconnecting proxy runs.
    }
    return {RequestKind::kSubscribe};
  }
  TypeState& state = it->second;
  if (request.response_nonce() != state.sent_nonce) return {RequestKind::kStale};
  Answer answer{RequestKind::kAck};
  if (request.has_error_detail()) {
    answer.kind = RequestKind::kNack;
    state.nacked_version = state.sent_version;
    state.last_error = request.error_detail().message();
    state.last_nack_version = state.nacked_version;
    state.last_nack_error = state.last_error;
  } else {
    state.acked_version = state.sent_version;
    state.nacked_version.clear();
    state.last_error.clear();
  }
  if (names != state.resource_names) {
    state.resource_names = std::move(names);
    answer.names_changed = true;
  }
  return answer;
}

bool StreamSubscriptions::Differs(const std::string& type_url, const std::string& content) const {
  auto it = types_.find(type_url);
  return it == types_.end() || it->second.sent_nonce.empty() || it->second.sent_content != content;
}

std::string StreamSubscriptions::RecordSent(const std::string& type_url, const std::string& version,
                                            std::string content) {
  TypeState& state = types_[type_url];
  state.sent_version = version;
  state.sent_nonce = absl::StrCat(next_nonce_++);
  state.sent_content = std::move(content);
  return state.sent_nonce;
}

const StreamSubscriptions::TypeState* StreamSubscriptions::Find(const std::string& type_url) const {
  auto it = types_.find(type_url);
  return it == types_.end() ? nullptr : &it->second;
}

}  // namespace phoenix::control_plane
