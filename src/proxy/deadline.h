// A deadline on the waits of one socket: when it passes, the socket is closed, so whatever
// operation is waiting on it ends with an error. The socket and this object must be used on one
// thread (the socket's executor is single-threaded), and the socket outlives this object.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>

namespace argon::proxy {

class SocketDeadline {
 public:
  template <typename Socket>
  SocketDeadline(Socket& socket, std::chrono::milliseconds after)
      : timer_(socket.get_executor(), after), state_(std::make_shared<State>()) {
    timer_.async_wait([&socket, state = state_](boost::system::error_code ec) {
      // Cancelled, or expired just as the waits finished and this object went away.
      if (ec || !state->armed) return;
      state->expired = true;
      boost::system::error_code ignored;
      socket.close(ignored);
    });
  }
  ~SocketDeadline() {
    state_->armed = false;
    timer_.cancel();
  }
  SocketDeadline(const SocketDeadline&) = delete;
  SocketDeadline& operator=(const SocketDeadline&) = delete;

  bool expired() const { return state_->expired; }

 private:
  struct State {
    bool armed = true;
    bool expired = false;
  };
  boost::asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

}  // namespace argon::proxy
