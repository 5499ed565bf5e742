// What every connection of the proxy shares: the options, the TLS context, the engine's resolver,
// the endpoint registry, the cancel keys and the admin pool. Owned by ProxyServer and kept alive by
// the connections that use it.
#pragma once

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <mutex>
#include <set>
#include <string_view>

#include "common/clock.h"
#include "compute/endpoint_access.h"
#include "proxy/admin_pool.h"
#include "proxy/cancel_keys.h"
#include "proxy/endpoint_registry.h"
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
  AdminPool* admin = nullptr;                    // set before accepting starts; lives on the loops
  boost::asio::thread_pool* blocking = nullptr;  // for calls that may block (the wake)

  std::atomic<int> open_connections{0};
  std::atomic<bool> stopping{false};
  std::mutex sessions_mu;
  std::set<std::shared_ptr<Session>> sessions;  // every open client connection, for stop()
};

}  // namespace argon::proxy
