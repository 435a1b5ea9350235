#include "sink/sender.h"

#include "common/atomic_file.h"

namespace leakwatch::sink {

Result<std::unique_ptr<Sender>> make_sender(const SinkConfig& c) {
  return c.kind == SinkConfig::Kind::kPyroscope ? make_pyroscope_sender(c) : make_parca_sender(c);
}

Result<std::string> read_bearer_token(const std::string& file) {
  if (file.empty()) return std::string();
  auto t = read_file(file);
  if (!t) return fail("bearer_token_file {}: {}", file, t.error().message);
  std::string token = *t;
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' '))
    token.pop_back();
  return token;
}

}  // namespace leakwatch::sink
