// SQL over HTTP's statements on one backend connection to a compute, in one round trip: each
// statement is Parse, Bind (parameters as text), Describe and Execute of an unnamed statement,
// with a single Sync after the last, and the answer comes back in the JSON shapes Neon's proxy
// gives @neondatabase/serverless (`fields`, `rows`, `command`, `rowCount`, `rowAsArray`). A batch
// runs between START TRANSACTION and COMMIT, and is rolled back when a statement fails. The
// connection's session state from an earlier request is reset first when it comes from the pool
// (send_reset, sent before the request's password check).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "pgwire/messages.h"
#include "proxy/http_request.h"

namespace argon::proxy {

struct HttpBatch {
  std::string isolation;  // "" or the SQL words, e.g. "REPEATABLE READ"
  bool read_only = false;
  bool deferrable = false;
};

struct HttpQueryOptions {
  bool array_mode = false;   // rows as arrays, not objects keyed by column name
  bool raw_text = false;     // every value as its text; else Neon's JSON conversion
  bool reset_first = false;  // a pooled connection whose send_reset() went ahead: skip its answers
  std::size_t max_response = 0;  // bytes of values and names; over it the answer is dropped
};

struct HttpQueryOutcome {
  std::vector<boost::json::object> results;  // one per statement, when all succeeded
  std::optional<pgwire::ErrorFields> error;  // the first statement's error, if one failed
  bool too_large = false;                    // max_response reached; nothing else is known
  // The connection is idle again, outside a transaction, with nothing unread: it may be pooled.
  bool reusable = false;
};

// The statement text that opens a batch's transaction.
std::string start_transaction_sql(const HttpBatch& batch);

// A pooled connection's reset, sent ahead of the request's statements: it carries nothing of the
// request, so it may run while the request's password is checked. Throws as run_http_statements.
boost::asio::awaitable<void> send_reset(boost::asio::local::stream_protocol::socket& backend);
// Reads the answers of a reset sent ahead up to its ReadyForQuery, for a request that then ran
// nothing: true when the connection is idle again and may go back to the pool.
boost::asio::awaitable<bool> finish_reset(boost::asio::local::stream_protocol::socket& backend);

// Runs `statements` (a batch when `batch` is set) on `backend`. Errors of the connection itself
// (closed, reset) are thrown as boost::system::system_error.
boost::asio::awaitable<HttpQueryOutcome> run_http_statements(
    boost::asio::local::stream_protocol::socket& backend,
    const std::vector<HttpStatement>& statements, const std::optional<HttpBatch>& batch,
    const HttpQueryOptions& options);

}  // namespace argon::proxy
