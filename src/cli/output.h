// How the CLI prints: JSON as the API returned it (`-o json`), or aligned tables of chosen fields
// (`-o table`), and progress while it waits: a live line with a spinner on a terminal, plain lines
// otherwise. Results go to stdout, everything else to stderr.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "cli/neon_client.h"

namespace argon::cli {

enum class Format { kTable, kJson };

struct Column {
  std::string header;
  std::string key;  // a field of the object; "a.b" reaches into a nested object
};

// A field as text: strings as they are, booleans yes/no, numbers, "-" when absent or null.
std::string field(const boost::json::value& obj, std::string_view key);
void print_json(const boost::json::value& v);
// One row per object of `items`, or one row for a single object.
void print_table(const std::vector<Column>& columns, const boost::json::array& items);
void print(Format format, const std::vector<Column>& columns,
           const boost::json::value& items_or_object);
// A step of a workflow or a note: one line on stderr.
void say(std::string_view line);

class TerminalProgress final : public Progress {
 public:
  explicit TerminalProgress(std::string what);
  void update(const std::string& action, std::chrono::milliseconds elapsed) override;
  void done() override;

 private:
  std::string what_;
  std::string last_action_;
  bool tty_;
  bool drawn_ = false;
  int frame_ = 0;
};

}  // namespace argon::cli
