// Pyroscope's push API over HTTP (cpp-httplib; https when the URL says so).
#include <httplib.h>

#include <optional>

#include "pyroscope_push.pb.h"
#include "sink/sender.h"

namespace leakwatch::sink {
namespace {

struct Url {
  std::string scheme_host_port;  // "http://host:4040"
  std::string path_prefix;       // "" or "/pyroscope" (behind a path-routing proxy)
};

Result<Url> split_url(const std::string& url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return fail("expected a URL, got \"{}\"", url);
  size_t path = url.find('/', scheme_end + 3);
  Url u;
  u.scheme_host_port = url.substr(0, path);
  if (path != std::string::npos) u.path_prefix = url.substr(path);
  while (u.path_prefix.ends_with('/')) u.path_prefix.pop_back();
  return u;
}

class PyroscopeSender : public Sender {
 public:
  PyroscopeSender(SinkConfig c, Url url) : c_(std::move(c)), url_(std::move(url)) {
    client_ = std::make_unique<httplib::Client>(url_.scheme_host_port);
    const auto t = std::chrono::milliseconds(static_cast<int64_t>(c_.timeout_s * 1000));
    client_->set_connection_timeout(t);
    client_->set_read_timeout(t);
    client_->set_write_timeout(t);
  }

  std::optional<SendError> send(const Profile& p) override {
    // The token is read on every push: a projected service-account token rotates.
    auto token = read_bearer_token(c_.bearer_token_file);
    if (!token) return SendError{token.error().message, true};
    pyroscope::PushRequest req;
    auto* series = req.add_series();
    for (auto& [k, v] : p.labels) {
      auto* l = series->add_labels();
      l->set_name(k);
      l->set_value(v);
    }
    auto* sample = series->add_samples();
    sample->set_raw_profile(p.pprof_gz);
    sample->set_id(p.id);
    std::string body;
    if (!req.SerializeToString(&body)) return SendError{"cannot serialize the push", false};

    httplib::Headers headers;
    if (!c_.tenant.empty()) headers.emplace("X-Scope-OrgID", c_.tenant);
    if (!token->empty()) headers.emplace("Authorization", "Bearer " + *token);
    headers.emplace("Connect-Protocol-Version", "1");
    auto res = client_->Post(url_.path_prefix + "/push.v1.PusherService/Push", headers, body,
                             "application/proto");
    if (!res) return SendError{"push failed: " + httplib::to_string(res.error()), true};
    if (res->status / 100 == 2) return std::nullopt;
    std::string detail = res->body.substr(0, 200);
    for (char& ch : detail)
      if (ch == '\n' || ch == '\r') ch = ' ';
    // 429 and 5xx are the store's momentary state; other 4xx reject this profile for good
    // (bad labels, too large, not authorised): retrying would not change the answer.
    const bool retryable = res->status == 429 || res->status >= 500 || res->status == 408;
    return SendError{fmt::format("HTTP {}: {}", res->status, detail), retryable};
  }

 private:
  SinkConfig c_;
  Url url_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace

Result<std::unique_ptr<Sender>> make_pyroscope_sender(const SinkConfig& c) {
  auto url = split_url(c.endpoint);
  if (!url) return std::unexpected(url.error());
  if (auto t = read_bearer_token(c.bearer_token_file); !t) return std::unexpected(t.error());
  return std::make_unique<PyroscopeSender>(c, *url);
}

}  // namespace leakwatch::sink
