// SQL over HTTP, as Neon's proxy serves @neondatabase/serverless's `neon()`: `POST /sql` with the
// connection string in `Neon-Connection-String`, the statement(s) as JSON in the body. Each request
// goes the way a connection does: the endpoint (the host's first label, or `options`), its gate
// and the wake, the password against the role's current verifier in the branch, and then a backend
// connection from the loop's pool (http_pool.h) or a new login. The statements run in one round
// trip (http_query.h), under a time limit after which they are cancelled. Answers and errors have
// the shapes the driver parses; the status codes follow Neon's (400 for errors the driver should
// raise with their `code`, 413 and 507 for the size limits).
#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/serialize.hpp>

#include "proxy/http_query.h"
#include "proxy/http_request.h"
#include "proxy/proxy_context.h"
#include "proxy/session.h"

namespace argon::proxy {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;
using namespace std::chrono_literals;

namespace {

constexpr auto kCancelDeadline = 5s;

bool header_true(const HttpRequest& r, std::string_view name) { return r[name] == "true"; }

Result<HttpBatch> batch_options(const HttpRequest& r,
                                std::vector<std::pair<std::string, std::string>>& echo) {
  HttpBatch b;
  const std::string_view level = r["Neon-Batch-Isolation-Level"];
  if (!level.empty()) {
    static const std::pair<std::string_view, std::string_view> kLevels[] = {
        {"ReadUncommitted", "READ UNCOMMITTED"},
        {"ReadCommitted", "READ COMMITTED"},
        {"RepeatableRead", "REPEATABLE READ"},
        {"Serializable", "SERIALIZABLE"}};
    for (const auto& [name, sql] : kLevels) {
      if (level == name) b.isolation = sql;
    }
    if (b.isolation.empty()) {
      return fail(ErrorCode::kBadRequest,
                  "invalid isolation level: use ReadUncommitted, ReadCommitted, RepeatableRead "
                  "or Serializable");
    }
    echo.emplace_back("Neon-Batch-Isolation-Level", std::string(level));
  }
  b.read_only = header_true(r, "Neon-Batch-Read-Only");
  b.deferrable = header_true(r, "Neon-Batch-Deferrable");
  if (b.read_only) echo.emplace_back("Neon-Batch-Read-Only", "true");
  if (b.deferrable) echo.emplace_back("Neon-Batch-Deferrable", "true");
  return b;
}

HttpAnswer postgres_error(const pgwire::ErrorFields& e) {
  return HttpAnswer{400, json::serialize(error_body(e)), "application/json", {}, false};
}

// Leaves the endpoint when the request is done, however it ends.
struct Joined {
  ProxyContext& proxy;
  const std::string& endpoint_id;
  std::shared_ptr<Session> session;
  bool& joined;
  ~Joined() {
    if (!joined) return;
    proxy.registry.leave(endpoint_id, session, true);
    joined = false;
  }
};

}  // namespace

awaitable<Result<compute::ComputeTarget>> Session::http_reach_compute() {
  auto entered = co_await enter_endpoint();
  if (!entered) co_return std::unexpected(entered.error());
  http_joined_ = true;
  co_return co_await wait_for_compute();
}

awaitable<std::optional<PooledBackend>> Session::pooled_backend(const HttpPool::Key& key) {
  HttpPool& pool = proxy_->http_pool(executor_);
  while (auto b = pool.take(key)) {
    try {
      co_await send_reset(*b->socket);
      co_return std::move(b);
    } catch (const boost::system::system_error&) {
      // Closed since its check (its compute stopping): the next one, if any.
    }
  }
  co_return std::nullopt;
}

awaitable<Result<PooledBackend>> Session::new_backend(const compute::ComputeTarget& target,
                                                      const std::string& database) {
  PooledBackend b;
  b.socket = std::make_unique<unix_socket>(executor_);
  pgwire::StartupMessage startup;
  startup.set("user", user_);
  startup.set("database", database);
  auto login = co_await open_compute_session(*b.socket, target.socket_dir, startup,
                                             proxy_->options.admin_timeout);
  if (!login) co_return std::unexpected(login.error());
  if (login->error) {
    // The compute's refusal (no such database, too many connections), framed: its fields.
    const pgwire::ErrorFields e =
        pgwire::parse_error_response(std::string_view(*login->error).substr(5));
    co_return fail(ErrorCode::kBadRequest, e.message, e.sqlstate);
  }
  b.cancel = {target.socket_dir, login->process_id, login->secret_key};
  co_return b;
}

awaitable<HttpAnswer> Session::sql_over_http(const HttpRequest& request) {
  auto info = parse_connection_string(request["Neon-Connection-String"]);
  if (!info) co_return http_error(400, info.error().message);
  if (request.count(boost::beast::http::field::authorization)) {
    co_return http_error(400,
                         "missing authentication credentials: required password (Argon does not "
                         "take JWTs; put the role's password in the connection string)");
  }
  auto body = parse_body(request.body());
  if (!body) co_return http_error(400, body.error().message);
  std::vector<std::pair<std::string, std::string>> echo;
  std::optional<HttpBatch> batch;
  if (body->batch) {
    auto b = batch_options(request, echo);
    if (!b) co_return http_error(400, b.error().message);
    batch = *b;
  }
  user_ = info->user;
  endpoint_id_ = info->endpoint_id;
  const std::string denied_message =
      fmt::format("password authentication failed for user '{}'", user_);
  if (proxy_->reserved(user_)) co_return http_error(400, denied_message, "28P01");

  Joined joined{*proxy_, endpoint_id_, shared_from_this(), http_joined_};
  auto target = co_await http_reach_compute();
  if (!target) co_return http_error(target.error());
  HttpPool& pool = proxy_->http_pool(executor_);
  const HttpPool::Key key{endpoint_id_, target->socket_dir, user_, info->database};
  // A pooled connection's reset runs while the password is checked: it carries nothing of the
  // request. A new connection is opened only once the password is right.
  std::optional<PooledBackend> ahead = co_await pooled_backend(key);
  std::optional<HttpAnswer> refusal;
  auto secret = co_await proxy_->admin->role_secret(target->socket_dir, user_);
  if (!secret) {
    refusal = http_error(secret.error());
  } else if (!secret->exists || secret->expired ||
             !proxy_->passwords.matches(secret->verifier, info->password)) {
    refusal = http_error(400, denied_message, "28P01");
  } else if (!secret->can_login) {
    refusal =
        http_error(400, fmt::format("role \"{}\" is not permitted to log in", user_), "28000");
  }
  if (refusal) {
    // (No co_await inside the condition: g++ 12 evaluates it even when `ahead` is empty.)
    if (ahead) {
      const bool idle = co_await finish_reset(*ahead->socket);
      if (idle && !terminate_reason_) pool.put(key, std::move(*ahead));
    }
    co_return std::move(*refusal);
  }

  HttpQueryOptions options;
  options.array_mode = header_true(request, "Neon-Array-Mode");
  options.raw_text = header_true(request, "Neon-Raw-Text-Output");
  options.max_response = proxy_->options.http_max_response;
  HttpQueryOutcome outcome;
  PooledBackend backend;
  // A pooled connection can have been closed since its check (its compute stopping): then the
  // request runs once more on a new one. A new one that fails is the answer.
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0) ahead = co_await pooled_backend(key);
    const bool reused = ahead.has_value();
    Result<PooledBackend> b = fail(ErrorCode::kInternal, "no backend");
    if (ahead) {
      b = std::move(*ahead);
      ahead.reset();
    } else {
      b = co_await new_backend(*target, info->database);
    }
    if (!b) {
      const auto& e = b.error();
      if (!e.detail.empty()) {  // the compute's own refusal, with its SQLSTATE
        pgwire::ErrorFields f;
        f.severity = "FATAL";
        f.sqlstate = e.detail;
        f.message = e.message;
        co_return postgres_error(f);
      }
      co_return http_error(e);
    }
    backend = std::move(*b);
    options.reset_first = reused;
    backend_ = std::move(*backend.socket);
    bool timed_out = false;
    asio::steady_timer limit(executor_, proxy_->options.http_query_timeout);
    limit.async_wait([&timed_out, executor = executor_,
                      cancel = backend.cancel](boost::system::error_code ec) {
      if (ec) return;
      timed_out = true;
      asio::co_spawn(executor, forward_cancel(executor, cancel, kCancelDeadline), asio::detached);
    });
    bool lost = false;
    try {
      outcome = co_await run_http_statements(backend_, body->statements, batch, options);
    } catch (const boost::system::system_error&) {
      lost = true;
    }
    limit.cancel();
    if (lost) {
      boost::system::error_code ec;
      backend_.close(ec);
      if (terminate_reason_) {
        co_return http_error(400, *terminate_reason_, "57P01", "FATAL");
      }
      if (reused && attempt == 0) continue;
      co_return http_error(
          500, fmt::format("the compute of endpoint {} closed the connection", endpoint_id_));
    }
    if (timed_out && outcome.error && outcome.error->sqlstate == "57014") {
      outcome.error->message = fmt::format(
          "canceling statement: the query ran longer than the SQL-over-HTTP limit of {} s",
          proxy_->options.http_query_timeout.count() / 1000);
    }
    break;
  }
  if (outcome.reusable && !terminate_reason_) {
    backend.socket = std::make_unique<unix_socket>(std::move(backend_));
    pool.put(key, std::move(backend));
  } else {
    boost::system::error_code ec;
    backend_.close(ec);
  }
  backend_ = unix_socket(executor_);

  if (outcome.too_large) {
    co_return http_error(507, fmt::format("response is too large (max is {} bytes)",
                                          proxy_->options.http_max_response));
  }
  if (outcome.error) co_return postgres_error(*outcome.error);
  HttpAnswer answer;
  if (body->batch) {
    json::array results;
    for (auto& r : outcome.results) results.push_back(std::move(r));
    answer.body = json::serialize(json::object{{"results", std::move(results)}});
    answer.headers = std::move(echo);
  } else if (!outcome.results.empty()) {
    answer.body = json::serialize(outcome.results.front());
  } else {
    co_return http_error(500, "the compute gave no result for the query");
  }
  co_return answer;
}

}  // namespace argon::proxy
