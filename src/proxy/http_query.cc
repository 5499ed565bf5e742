#include "proxy/http_query.h"

#include <array>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <charconv>
#include <cstdint>
#include <string_view>

#include "pgwire/message_framer.h"
#include "proxy/client_stream.h"

namespace argon::proxy {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;
using asio::use_awaitable;

namespace {

// What a pooled connection runs before the next request: DISCARD ALL without DISCARD PLANS, as
// Neon's proxy resets its pooled connections, less Neon's leading ROLLBACK. A connection is pooled
// only once idle outside a transaction (run_http_statements rolls back first), where ROLLBACK only
// warns "there is no transaction in progress", a line in the compute's log per HTTP query.
constexpr std::string_view kResetSql =
    "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL; "
    "UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES;";

// Per value in the size count, beside its bytes: quotes, comma, and the like.
constexpr std::size_t kValueOverhead = 4;

// Type OIDs the non-raw conversion knows (pg_type.dat).
constexpr std::uint32_t kBool = 16, kInt2 = 21, kInt4 = 23, kJson = 114, kFloat4 = 700,
                        kFloat8 = 701, kJsonb = 3802;

// A value as Neon's proxy converts it when raw text output is off: bool, int2/int4, finite floats
// and json/jsonb become JSON; everything else (int8 and numeric included) stays text.
json::value convert(std::uint32_t type, std::string_view text) {
  switch (type) {
    case kBool:
      return json::value(text == "t");
    case kInt2:
    case kInt4: {
      std::int64_t v = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec == std::errc() && end == text.data() + text.size()) return json::value(v);
      break;
    }
    case kFloat4:
    case kFloat8: {
      double v = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec == std::errc() && end == text.data() + text.size()) return json::value(v);
      break;  // NaN, Infinity
    }
    case kJson:
    case kJsonb: {
      boost::system::error_code ec;
      json::value v = json::parse(text, ec);
      if (!ec) return v;
      break;
    }
    default:
      break;
  }
  return json::value(json::string(text));
}

json::object field_json(const pgwire::FieldDescription& f) {
  return json::object{{"name", f.name},
                      {"tableID", f.table_oid},
                      {"columnID", f.column},
                      {"dataTypeID", f.type_oid},
                      {"dataTypeSize", f.type_size},
                      {"dataTypeModifier", f.type_modifier},
                      {"format", "text"}};
}

// `command` and `rowCount` from a CommandComplete tag: "INSERT 0 3" is INSERT and 3, "SELECT 2"
// SELECT and 2, "CREATE TABLE" CREATE and null.
void put_command(json::object& out, std::string_view tag) {
  const auto space = tag.find(' ');
  const std::string_view command = tag.substr(0, space);
  out["command"] = command;
  std::string_view count;
  if (space != std::string_view::npos) {
    std::string_view rest = tag.substr(space + 1);
    if (command == "INSERT") {
      const auto second = rest.find(' ');
      rest = second == std::string_view::npos ? std::string_view() : rest.substr(second + 1);
    }
    count = rest.substr(0, rest.find(' '));
  }
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), n);
  if (!count.empty() && ec == std::errc() && end == count.data() + count.size()) {
    out["rowCount"] = n;
  } else {
    out["rowCount"] = nullptr;
  }
}

// One statement's answer as it comes in.
struct Collector {
  const HttpQueryOptions& options;
  std::vector<pgwire::FieldDescription> fields;
  json::array rows;
  std::size_t* size;

  // false: over the response limit.
  bool add_row(const std::vector<std::optional<std::string>>& values) {
    for (const auto& v : values) *size += kValueOverhead + (v ? v->size() : 0);
    if (*size > options.max_response) return false;
    if (options.array_mode) {
      json::array row;
      row.reserve(values.size());
      for (std::size_t i = 0; i < values.size(); ++i) row.push_back(value(i, values[i]));
      rows.push_back(std::move(row));
    } else {
      json::object row;
      for (std::size_t i = 0; i < values.size(); ++i) {
        const std::string& name = i < fields.size() ? fields[i].name : std::string();
        *size += name.size() + kValueOverhead;
        row[name] = value(i, values[i]);  // a later column of the same name wins, as in Neon
      }
      rows.push_back(std::move(row));
    }
    return *size <= options.max_response;
  }
  json::value value(std::size_t i, const std::optional<std::string>& v) const {
    if (!v) return nullptr;
    if (options.raw_text || i >= fields.size()) return json::string(*v);
    return convert(fields[i].type_oid, *v);
  }
  json::object finish(std::string_view tag) {
    json::object out;
    json::array f;
    for (const auto& d : fields) f.push_back(field_json(d));
    out["fields"] = std::move(f);
    out["rows"] = std::move(rows);
    put_command(out, tag);
    out["rowAsArray"] = options.array_mode;
    fields.clear();
    rows = json::array();
    return out;
  }
};

}  // namespace

std::string start_transaction_sql(const HttpBatch& batch) {
  std::string sql = "START TRANSACTION";
  std::string sep = " ";
  if (!batch.isolation.empty()) {
    sql += sep + "ISOLATION LEVEL " + batch.isolation;
    sep = ", ";
  }
  if (batch.read_only) {
    sql += sep + "READ ONLY";
    sep = ", ";
  }
  if (batch.deferrable) sql += sep + "DEFERRABLE";
  return sql;
}

awaitable<void> send_reset(asio::local::stream_protocol::socket& backend) {
  co_await write_now(backend, pgwire::simple_query(kResetSql));
}

awaitable<bool> finish_reset(asio::local::stream_protocol::socket& backend) {
  pgwire::MessageFramer framer(64 * 1024);
  std::array<char, 4096> buf;
  try {
    for (;;) {
      auto m = framer.next();
      if (!m) co_return false;
      if (!*m) {
        const std::size_t n = co_await backend.async_read_some(asio::buffer(buf), use_awaitable);
        framer.feed(std::string_view(buf.data(), n));
        continue;
      }
      // The reset ends outside a transaction: its ReadyForQuery leaves the connection idle.
      if ((*m)->type == 'Z') co_return framer.buffered() == 0;
    }
  } catch (const boost::system::system_error&) {
    co_return false;
  }
}

awaitable<HttpQueryOutcome> run_http_statements(asio::local::stream_protocol::socket& backend,
                                                const std::vector<HttpStatement>& statements,
                                                const std::optional<HttpBatch>& batch,
                                                const HttpQueryOptions& options) {
  std::string out;
  // Answers to skip before the user's: the reset sent ahead (up to its ReadyForQuery) and START
  // TRANSACTION.
  int skip_ready = options.reset_first ? 1 : 0;
  if (batch) out += pgwire::described_query(start_transaction_sql(*batch), {});
  for (const auto& s : statements) out += pgwire::described_query(s.sql, s.params);
  if (batch) out += pgwire::described_query("COMMIT", {});
  out += pgwire::sync_message();
  co_await write_now(backend, out);

  HttpQueryOutcome result;
  std::size_t size = 0;
  Collector current{options, {}, {}, &size};
  // Completions seen of the extended-protocol statements: START TRANSACTION, the user's, COMMIT.
  std::size_t completed = 0;
  const std::size_t first_user = batch ? 1 : 0;
  pgwire::MessageFramer framer(options.max_response + 64 * 1024);
  std::array<char, 16384> buf;
  for (;;) {
    auto m = framer.next();
    if (!m) {  // a message longer than the whole response may be
      result.too_large = true;
      co_return result;
    }
    if (!*m) {
      auto b = asio::buffer(buf);
      const std::size_t n = co_await backend.async_read_some(b, use_awaitable);
      framer.feed(std::string_view(buf.data(), n));
      continue;
    }
    const pgwire::Message& msg = **m;
    if (skip_ready > 0) {  // the reset's answers
      if (msg.type == 'Z') --skip_ready;
      continue;
    }
    switch (msg.type) {
      case 'T': {
        auto fields = pgwire::parse_row_description(msg.body);
        if (!fields) throw boost::system::system_error(asio::error::invalid_argument);
        current.fields = std::move(*fields);
        for (const auto& f : current.fields) size += f.name.size() + 64;
        break;
      }
      case 'D': {
        if (completed < first_user || result.error) break;
        auto row = pgwire::parse_data_row(msg.body);
        if (!row) throw boost::system::system_error(asio::error::invalid_argument);
        if (!current.add_row(*row)) {
          result.too_large = true;
          co_return result;  // the rest stays unread: the connection is not reusable
        }
        break;
      }
      case 'C':
      case 'I': {  // CommandComplete, or EmptyQueryResponse for an empty statement
        const std::string_view tag =
            msg.type == 'C' ? msg.body.substr(0, msg.body.find('\0')) : std::string_view();
        const bool user = completed >= first_user && completed < first_user + statements.size();
        json::object r = current.finish(tag);
        if (user) result.results.push_back(std::move(r));
        ++completed;
        break;
      }
      case 'E':
        if (!result.error) result.error = pgwire::parse_error_response(msg.body);
        break;
      case 'Z': {
        const char status = msg.body.empty() ? 'I' : msg.body[0];
        if (status != 'I') {
          // A failed batch (or a user's BEGIN): roll back so the connection is clean.
          const std::string rollback = pgwire::simple_query("ROLLBACK");
          co_await write_now(backend, rollback);
          // Read on to the ROLLBACK's ReadyForQuery, then stop.
          for (;;) {
            auto r = framer.next();
            if (!r) co_return result;  // not reusable
            if (!*r) {
              auto b = asio::buffer(buf);
              const std::size_t n = co_await backend.async_read_some(b, use_awaitable);
              framer.feed(std::string_view(buf.data(), n));
              continue;
            }
            if ((*r)->type == 'Z') break;
          }
        }
        result.reusable = true;
        if (result.error) result.results.clear();
        co_return result;
      }
      default:  // ParseComplete, BindComplete, NoData, notices, ParameterStatus, notifications
        break;
    }
  }
}

}  // namespace argon::proxy
