#include "proxy/http_pool.h"

#include <sys/socket.h>

#include <cerrno>

namespace argon::proxy {

namespace {

// An idle backend has nothing to say: EOF means its compute closed it, bytes mean a notice such
// as the FATAL of a shutdown. Either way it cannot serve a request.
bool still_idle(boost::asio::local::stream_protocol::socket& s) {
  char c;
  const ssize_t n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

std::optional<PooledBackend> HttpPool::take(const Key& key) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return std::nullopt;
  std::optional<PooledBackend> found;
  while (!it->second.empty() && !found) {
    Idle idle = std::move(it->second.back());
    it->second.pop_back();
    if (still_idle(*idle.backend.socket)) found = std::move(idle.backend);
  }
  if (it->second.empty()) idle_.erase(it);
  return found;
}

std::size_t HttpPool::idle_of(std::string_view endpoint_id) const {
  std::size_t n = 0;
  for (const auto& [k, v] : idle_) {
    if (k.endpoint_id == endpoint_id) n += v.size();
  }
  return n;
}

void HttpPool::put(const Key& key, PooledBackend backend) {
  if (idle_of(key.endpoint_id) >= kPerEndpoint) return;  // closed with `backend`
  idle_[key].push_back({std::move(backend), std::chrono::steady_clock::now()});
}

void HttpPool::drop_endpoint(std::string_view endpoint_id) {
  std::erase_if(idle_, [&](const auto& e) { return e.first.endpoint_id == endpoint_id; });
}

void HttpPool::sweep(std::chrono::steady_clock::time_point now) {
  for (auto it = idle_.begin(); it != idle_.end();) {
    std::erase_if(it->second, [&](const Idle& i) { return now - i.since > kIdleLimit; });
    it = it->second.empty() ? idle_.erase(it) : std::next(it);
  }
}

void HttpPool::clear() { idle_.clear(); }

std::size_t HttpPool::idle_count() const {
  std::size_t n = 0;
  for (const auto& [k, v] : idle_) n += v.size();
  return n;
}

}  // namespace argon::proxy
