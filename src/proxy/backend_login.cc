// The login to the compute on the client's behalf, over the compute's private socket
// (compute_login.h), while the client authenticates. The compute's refusal (unknown database, too
// many connections) reaches the client only once it has authenticated; the compute's cancel key
// stays in the proxy and the client gets one of the proxy's own.
#include <fmt/format.h>

#include "pgwire/messages.h"
#include "proxy/proxy_context.h"
#include "proxy/session.h"

namespace argon::proxy {

namespace asio = boost::asio;
using asio::awaitable;

awaitable<Result<ComputeLogin>> Session::start_backend(const compute::ComputeTarget& target,
                                                       const RoleSecret& secret) {
  // authenticate() turns such a role away, and no backend is started for it.
  if (!secret.exists || !secret.can_login || secret.expired) {
    co_return fail(ErrorCode::kForbidden,
                   fmt::format("role \"{}\" is not permitted to log in", user_));
  }
  co_return co_await open_compute_session(backend_, target.socket_dir, startup_,
                                          proxy_->options.admin_timeout);
}

awaitable<Status> Session::login_to_compute(const compute::ComputeTarget& target,
                                            Result<ComputeLogin> login) {
  if (!login) co_return std::unexpected(login.error());
  if (login->error) {
    // The compute refused: the client gets its words, after the AuthenticationOk it has earned.
    {
      const std::string out = pgwire::authentication_ok();
      co_await client_.write(out);
    }
    co_await client_.write(*login->error);
    co_return fail(ErrorCode::kBadRequest, "");
  }
  cancel_key_ =
      proxy_->cancel_keys.issue({target.socket_dir, login->process_id, login->secret_key});
  backend_greeting_ = login->parameter_messages +
                      pgwire::backend_key_data(cancel_key_->first, cancel_key_->second) +
                      login->ready_message;
  co_return Status{};
}

}  // namespace argon::proxy
