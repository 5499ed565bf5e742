// The connection proxy: one listening port for every endpoint. It speaks the PostgreSQL protocol up
// to authentication itself (TLS, endpoint resolution, SCRAM against the role's verifier in the
// branch), wakes a suspended compute, logs in to the compute on the client's behalf over the
// compute's private socket, and then relays bytes. It keeps every live connection per endpoint, so
// the operations engine can gate, terminate and ungate them (compute::ConnectionControl).
//
// It runs on threads of its own, apart from the API's: one single-threaded event loop per core for
// the connections, a housekeeping loop (the listening socket, the admin pool, the registry's
// janitor) and a small pool for the engine's wake, which may block.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/cluster_names.h"
#include "common/error.h"
#include "compute/endpoint_access.h"

namespace argon::proxy {

class TlsContext;
struct ProxyContext;

struct ProxyOptions {
  std::string listen_host = "127.0.0.1";
  int listen_port = 5420;  // 0 = any free port
  bool allow_plaintext = true;
  std::string admin_user{kAdminRole};  // the proxy's own role inside computes
  // Roles refused at the proxy whatever the password (admin_user always is).
  std::function<bool(std::string_view)> reserved_role;
  std::chrono::milliseconds handshake_timeout{15000};  // startup packet through authentication
  std::chrono::milliseconds wake_timeout{60000};       // waiting for a compute to start
  std::chrono::milliseconds gate_timeout{30000};       // waiting at a gate
  std::chrono::milliseconds admin_timeout{10000};      // one exchange with a compute: an admin
                                                       // query, or a login on a client's behalf
  // How long an endpoint nobody is connected to stays in the registry, so that autosuspend (which
  // reads activity() every --expiry-check-seconds) sees its last connection. Longer than that.
  std::chrono::milliseconds idle_endpoint_retention{60000};
  int max_connections = 10000;

  // SQL over HTTP (Neon's limits for the first two).
  std::size_t http_max_request = 10 << 20;               // a request body; over it, 413
  std::size_t http_max_response = 10 << 20;              // a response's values; over it, 507
  std::chrono::milliseconds http_query_timeout{300000};  // then the query is cancelled
  std::chrono::milliseconds http_idle_timeout{60000};    // a kept-alive connection between requests
};

class ProxyServer final : public compute::ConnectionControl {
 public:
  // `tls` may be null (plaintext only). The resolver and clock outlive the proxy. A connection
  // stays on one loop from accept to close.
  ProxyServer(ProxyOptions options, std::shared_ptr<TlsContext> tls,
              compute::EndpointResolver& resolver, const Clock& clock);
  ~ProxyServer() override;

  // Binds the listening socket; returns the bound port.
  Result<int> listen();
  // Starts the loops' threads and accepting.
  void start();
  // Stops accepting and closes every client connection (argond shutdown); the loops run on until
  // the proxy is destroyed, so the connections can say why they close.
  void stop();

  void gate(const std::string& endpoint_id) override;
  void ungate(const std::string& endpoint_id) override;
  void set_held(const std::set<std::string>& endpoint_ids) override;
  void terminate(const std::string& endpoint_id, const std::string& reason) override;
  void prepare(const std::filesystem::path& socket_dir,
               const std::vector<std::string>& roles) override;
  std::map<std::string, compute::EndpointActivity> activity() const override;

  struct Loops;

 private:
  std::shared_ptr<ProxyContext> context_;
  std::unique_ptr<Loops> loops_;
};

}  // namespace argon::proxy
