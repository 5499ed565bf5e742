#include "proxy/cancel_keys.h"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <string>

#include "common/random.h"
#include "pgwire/messages.h"
#include "proxy/compute_login.h"
#include "proxy/deadline.h"

namespace argon::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

CancelKey CancelKeys::issue(const CancelTarget& target) {
  std::lock_guard l(mu_);
  CancelKey key;
  do {
    key.first = static_cast<std::int32_t>(secure_random(0x7fffffff)) + 1;
    key.second = static_cast<std::int32_t>(secure_random(0xffffffffULL));
  } while (keys_.contains(key));
  keys_[key] = target;
  return key;
}

std::optional<CancelTarget> CancelKeys::find(const CancelKey& key) const {
  std::lock_guard l(mu_);
  auto it = keys_.find(key);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

void CancelKeys::erase(const CancelKey& key) {
  std::lock_guard l(mu_);
  keys_.erase(key);
}

awaitable<void> forward_cancel(asio::any_io_executor executor, CancelTarget target,
                               std::chrono::milliseconds deadline) {
  asio::local::stream_protocol::socket s(executor);
  SocketDeadline limit(s, deadline);
  boost::system::error_code ec;
  co_await s.async_connect(compute_socket_path(target.socket_dir),
                           asio::redirect_error(use_awaitable, ec));
  if (ec) co_return;
  const std::string request = pgwire::encode_cancel_request({target.process_id, target.secret_key});
  co_await asio::async_write(s, asio::buffer(request), asio::redirect_error(use_awaitable, ec));
}

}  // namespace argon::proxy
