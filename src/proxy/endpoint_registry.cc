#include "proxy/endpoint_registry.h"

#include <algorithm>

namespace argon::proxy {

void EndpointRegistry::gate(const std::string& endpoint_id) {
  std::lock_guard l(mu_);
  ++entries_[endpoint_id].gates;
}

void EndpointRegistry::ungate(const std::string& endpoint_id) {
  std::lock_guard l(mu_);
  auto it = entries_.find(endpoint_id);
  if (it != entries_.end() && it->second.gates > 0) --it->second.gates;
}

void EndpointRegistry::set_held(const std::set<std::string>& endpoint_ids) {
  std::lock_guard l(mu_);
  for (auto& [id, e] : entries_) e.held = endpoint_ids.contains(id);
  for (const auto& id : endpoint_ids) entries_[id].held = true;
}

bool EndpointRegistry::try_join(const std::string& endpoint_id,
                                const std::shared_ptr<Session>& session) {
  std::lock_guard l(mu_);
  auto it = entries_.find(endpoint_id);
  if (it != entries_.end() && (it->second.gates > 0 || it->second.held)) return false;
  if (it == entries_.end()) it = entries_.emplace(endpoint_id, Entry{}).first;
  it->second.sessions.insert(session);
  it->second.last_active_ms = clock_.now_ms();
  return true;
}

void EndpointRegistry::leave(const std::string& endpoint_id,
                             const std::shared_ptr<Session>& session, bool reached_compute) {
  std::lock_guard l(mu_);
  auto it = entries_.find(endpoint_id);
  if (it == entries_.end() || it->second.sessions.erase(session) == 0) return;
  it->second.last_active_ms = clock_.now_ms();
  it->second.served = it->second.served || reached_compute;
  if (it->second.idle() && !it->second.served) entries_.erase(it);
}

std::set<std::shared_ptr<Session>> EndpointRegistry::sessions_of(
    const std::string& endpoint_id) const {
  std::lock_guard l(mu_);
  auto it = entries_.find(endpoint_id);
  return it == entries_.end() ? std::set<std::shared_ptr<Session>>{} : it->second.sessions;
}

bool EndpointRegistry::any_joined(const std::string& endpoint_id,
                                  const std::set<std::shared_ptr<Session>>& sessions) const {
  std::lock_guard l(mu_);
  auto it = entries_.find(endpoint_id);
  if (it == entries_.end()) return false;
  return std::any_of(sessions.begin(), sessions.end(),
                     [&](const auto& s) { return it->second.sessions.contains(s); });
}

std::map<std::string, compute::EndpointActivity> EndpointRegistry::activity() const {
  std::map<std::string, compute::EndpointActivity> out;
  std::lock_guard l(mu_);
  for (const auto& [id, e] : entries_) {
    out[id] = {static_cast<int>(e.sessions.size()), e.last_active_ms};
  }
  return out;
}

std::size_t EndpointRegistry::prune(std::chrono::milliseconds retention) {
  const std::int64_t before = clock_.now_ms() - retention.count();
  std::lock_guard l(mu_);
  return std::erase_if(entries_, [&](const auto& kv) {
    return kv.second.idle() && kv.second.last_active_ms < before;
  });
}

std::size_t EndpointRegistry::size() const {
  std::lock_guard l(mu_);
  return entries_.size();
}

}  // namespace argon::proxy
