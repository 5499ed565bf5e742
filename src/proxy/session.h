// One client connection, from the first byte to the end of the relay. All of its I/O runs on one
// single-threaded loop; terminate() reaches it by posting to that loop. Its phases live one per
// file: what the client speaks (first_bytes.cc), the startup negotiation and the choice of
// endpoint (handshake.cc), the gate and the wake (gate_and_wake.cc), the client's authentication
// (client_auth.cc), the login to the compute on the client's behalf (backend_login.cc) and the
// relay (relay.cc); session.cc runs them in order. A connection that speaks HTTP instead is served
// by http_server.cc, one request at a time, and SQL over HTTP (sql_over_http.cc) takes each request
// through the same gate, wake and password check to a pooled backend connection.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "common/error.h"
#include "compute/endpoint_access.h"
#include "pgwire/message_framer.h"
#include "pgwire/scram.h"
#include "pgwire/startup_packet.h"
#include "pgwire/wire_format.h"
#include "proxy/cancel_keys.h"
#include "proxy/client_stream.h"
#include "proxy/compute_login.h"
#include "proxy/http_message.h"
#include "proxy/http_pool.h"

namespace argon::proxy {

struct ProxyContext;

class Session : public std::enable_shared_from_this<Session> {
 public:
  // How far the connection got. A terminate() request is separate (terminate_reason_): it can
  // arrive in any phase.
  enum class Phase {
    kStartup,    // negotiation (TLS, protocol version) and the choice of endpoint
    kWaiting,    // joined the endpoint: waiting at its gate, then for its compute
    kLoggingIn,  // the compute runs: authenticating the client, logging in to the compute
    kRelaying,   // bytes flow both ways
    kHttp,       // serving HTTP requests; joined to an endpoint only while one runs
  };

  Session(std::shared_ptr<ProxyContext> proxy, boost::asio::ip::tcp::socket socket);

  boost::asio::awaitable<void> run();
  // Posted by the engine (any thread): close with 57P01 and `reason`, finishing the message in
  // flight if relaying.
  void terminate(std::string reason);

 private:
  using unix_socket = boost::asio::local::stream_protocol::socket;
  using Message = std::pair<char, std::string>;

  void close_all();
  // Closes the connection unless disarmed (watchdog_.cancel()) or re-armed within `d`.
  void arm_watchdog(std::chrono::milliseconds d);
  // Startup through the greeting; Status{} with phase kStartup means a CancelRequest was served.
  boost::asio::awaitable<Status> establish();

  // first_bytes.cc: TLS first when the client starts with a ClientHello; true when it speaks HTTP.
  boost::asio::awaitable<Result<bool>> speaks_http();

  // http_server.cc; true when the client upgraded to a WebSocket tunnel of the PostgreSQL protocol
  boost::asio::awaitable<bool> serve_http();

  // sql_over_http.cc
  boost::asio::awaitable<HttpAnswer> sql_over_http(const HttpRequest& request);
  // The endpoint's compute for one request, through the gate and the wake; joined on success.
  boost::asio::awaitable<Result<compute::ComputeTarget>> http_reach_compute();
  // A live pooled connection for `key` with its reset sent (send_reset), if the pool has one.
  boost::asio::awaitable<std::optional<PooledBackend>> pooled_backend(const HttpPool::Key& key);
  // A new connection to the compute, logged in as the request's role.
  boost::asio::awaitable<Result<PooledBackend>> new_backend(const compute::ComputeTarget& target,
                                                            const std::string& database);

  // handshake.cc
  boost::asio::awaitable<Result<std::optional<pgwire::StartupMessage>>> read_startup();
  // Reads the startup packets and works out the endpoint; false: it was a CancelRequest.
  boost::asio::awaitable<Result<bool>> handshake();
  // The `endpoint=<id>;<password>` form, when neither SNI nor options named the endpoint.
  boost::asio::awaitable<Status> endpoint_from_password();
  // Asks for a cleartext password and reads it (the client may have sent it already).
  boost::asio::awaitable<Result<std::string>> read_cleartext_password();

  // gate_and_wake.cc
  boost::asio::awaitable<Status> enter_endpoint();
  boost::asio::awaitable<Result<compute::ComputeTarget>> wait_for_compute();
  boost::asio::awaitable<Result<std::optional<compute::ComputeTarget>>> wake();

  // client_auth.cc
  boost::asio::awaitable<Status> authenticate(const RoleSecret& secret);
  boost::asio::awaitable<Status> scram_exchange(const pgwire::ScramVerifier& verifier);

  // backend_login.cc
  boost::asio::awaitable<Result<ComputeLogin>> start_backend(const compute::ComputeTarget& target,
                                                             const RoleSecret& secret);
  boost::asio::awaitable<Status> login_to_compute(const compute::ComputeTarget& target,
                                                  Result<ComputeLogin> login);

  // relay.cc
  boost::asio::awaitable<void> relay();
  boost::asio::awaitable<void> client_to_backend();
  boost::asio::awaitable<void> backend_to_client();

  // The next typed message from the client before the relay (bounded by the framer).
  boost::asio::awaitable<Result<Message>> read_message();
  boost::asio::awaitable<void> sleep(std::chrono::milliseconds d);
  Error denied() const;  // the password error, whatever was wrong

  std::shared_ptr<ProxyContext> proxy_;
  boost::asio::any_io_executor executor_;
  ClientStream client_;
  unix_socket backend_;
  // handshake_timeout, from the first byte to the relay; for HTTP, per request and between them
  boost::asio::steady_timer watchdog_;
  pgwire::MessageFramer framer_{pgwire::kMaxAuthMessageLength};
  Phase phase_ = Phase::kStartup;
  std::optional<std::string> terminate_reason_;
  pgwire::StartupMessage startup_;
  std::string endpoint_id_;
  std::string user_;
  std::optional<std::string> cleartext_;  // the password, when the client sent it in the clear
  std::optional<CancelKey> cancel_key_;
  std::string backend_greeting_;  // ParameterStatus..ReadyForQuery from the compute, for the client
  bool http_joined_ = false;      // an HTTP request is joined to endpoint_id_ now
};

}  // namespace argon::proxy
