// What every connection of the proxy shares: the options, the TLS context, the engine's resolver,
// the endpoint registry, the cancel keys and the admin pool. Owned by ProxyServer and kept alive by
// the connections that use it.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "compute/endpoint_access.h"
#include "proxy/admin_pool.h"
#include "proxy/cancel_keys.h"
#include "proxy/endpoint_registry.h"
#include "proxy/http_pool.h"
#include "proxy/password_check.h"
#include "proxy/proxy_server.h"

namespace argon::proxy {

class Session;
class TlsContext;

struct ProxyContext {
  ProxyContext(ProxyOptions options_, std::shared_ptr<TlsContext> tls_,
               compute::EndpointResolver& resolver_, const Clock& clock_)
      : options(std::move(options_)),
        tls(std::move(tls_)),
        resolver(resolver_),
        clock(clock_),
        registry(clock_) {}

  bool reserved(std::string_view role) const {
    return role == options.admin_user || (options.reserved_role && options.reserved_role(role));
  }

  const ProxyOptions options;
  const std::shared_ptr<TlsContext> tls;
  compute::EndpointResolver& resolver;
  const Clock& clock;
  EndpointRegistry registry;
  CancelKeys cancel_keys;
  PasswordCheck passwords;
  AdminPool* admin = nullptr;  // set before accepting starts; lives on the loops
  // One per connection loop, each used on its loop only; set before accepting starts.
  std::vector<std::unique_ptr<HttpPool>> http_pools;
  HttpPool& http_pool(const boost::asio::any_io_executor& executor) {
    auto* loop = &boost::asio::query(executor, boost::asio::execution::context);
    for (auto& p : http_pools) {
      if (p->loop() == loop) return *p;
    }
    // A pool used from another loop's thread would be a data race: fail loudly instead.
    throw std::logic_error("SQL over HTTP outside the proxy's connection loops");
  }
  boost::asio::thread_pool* blocking = nullptr;  // for calls that may block (the wake)

  std::atomic<int> open_connections{0};
  std::atomic<bool> stopping{false};
  std::mutex sessions_mu;
  std::set<std::shared_ptr<Session>> sessions;  // every open client connection, for stop()
};

}  // namespace argon::proxy
