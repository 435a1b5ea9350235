#include "support/profile_servers.h"

#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "parca_profilestore.grpc.pb.h"
#include "pyroscope_push.pb.h"

namespace leakwatch::testing {

std::string gunzip(const std::string& in) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return "";  // gzip only: a zlib stream fails
  std::string out;
  char buf[65536];
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
  }
  inflateEnd(&zs);
  return rc == Z_STREAM_END ? out : "";
}

std::string ReceivedProfile::label(const std::string& name) const {
  for (auto& [k, v] : labels)
    if (k == name) return v;
  return "";
}

std::vector<std::string> ReceivedProfile::sample_types() const {
  std::vector<std::string> out;
  for (const auto& st : profile.sample_type())
    out.push_back(profile.string_table(static_cast<int>(st.type())) + "/" +
                  profile.string_table(static_cast<int>(st.unit())));
  return out;
}

std::vector<std::string> ReceivedProfile::function_names() const {
  std::vector<std::string> out;
  for (const auto& f : profile.function())
    out.push_back(profile.string_table(static_cast<int>(f.name())));
  return out;
}

std::vector<ReceivedProfile> ProfileServer::received() const {
  std::lock_guard lock(mu_);
  return received_;
}

bool ProfileServer::wait_for(size_t n, double timeout_s) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::duration<double>(timeout_s),
                      [&] { return received_.size() >= n; });
}

void ProfileServer::add(ReceivedProfile p) {
  {
    std::lock_guard lock(mu_);
    received_.push_back(std::move(p));
  }
  cv_.notify_all();
}

namespace {

// A pprof as a store receives it: gzipped or plain, then a Profile message.
void decode_pprof(const std::string& raw, ReceivedProfile& r) {
  r.gzipped = raw.size() > 2 && static_cast<unsigned char>(raw[0]) == 0x1f &&
              static_cast<unsigned char>(raw[1]) == 0x8b;
  r.parsed = r.profile.ParseFromString(r.gzipped ? gunzip(raw) : raw);
}

class PyroscopeServer : public ProfileServer {
 public:
  PyroscopeServer() {
    server_.Post("/push.v1.PusherService/Push", [this](const httplib::Request& req,
                                                       httplib::Response& res) {
      if (take_failure()) {
        res.status = fail_retryable_ ? 503 : 400;
        res.set_content(R"({"code":"unavailable","message":"failing on purpose"})",
                        "application/json");
        return;
      }
      // Connect's unary protocol: the body is the message in the content type's codec.
      if (req.get_header_value("Content-Type") != "application/proto") {
        res.status = 415;
        return;
      }
      leakwatch::sink::pyroscope::PushRequest push;
      if (!push.ParseFromString(req.body)) {
        res.status = 400;
        return;
      }
      for (const auto& series : push.series())
        for (const auto& sample : series.samples()) {
          ReceivedProfile r;
          for (const auto& l : series.labels()) r.labels.emplace_back(l.name(), l.value());
          r.id = sample.id();
          for (auto& [k, v] : req.headers) {
            std::string key = k;
            std::transform(key.begin(), key.end(), key.begin(),
                           [](unsigned char c) { return std::tolower(c); });
            r.headers[key] = v;
          }
          decode_pprof(sample.raw_profile(), r);
          add(std::move(r));
        }
      res.status = 200;
      res.set_content("", "application/proto");  // an empty PushResponse
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~PyroscopeServer() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  int port() const override { return port_; }

 private:
  httplib::Server server_;
  int port_ = -1;
  std::thread thread_;
};

namespace pb = parca::profilestore::v1alpha1;

class ParcaServer : public ProfileServer, public pb::ProfileStoreService::Service {
 public:
  ParcaServer() {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(this);
    server_ = b.BuildAndStart();
  }
  ~ParcaServer() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  int port() const override { return port_; }

  grpc::Status WriteRaw(grpc::ServerContext* ctx, const pb::WriteRawRequest* req,
                        pb::WriteRawResponse*) override {
    if (take_failure())
      return grpc::Status(fail_retryable_ ? grpc::StatusCode::UNAVAILABLE
                                          : grpc::StatusCode::INVALID_ARGUMENT,
                          "failing on purpose");
    for (const auto& series : req->series())
      for (const auto& sample : series.samples()) {
        ReceivedProfile r;
        for (const auto& l : series.labels().labels()) r.labels.emplace_back(l.name(), l.value());
        for (auto& [k, v] : ctx->client_metadata())
          r.headers[std::string(k.data(), k.size())] = std::string(v.data(), v.size());
        decode_pprof(sample.raw_profile(), r);
        add(std::move(r));
      }
    return grpc::Status::OK;
  }

 private:
  int port_ = -1;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace

std::unique_ptr<ProfileServer> start_pyroscope_server() { return std::make_unique<PyroscopeServer>(); }
std::unique_ptr<ProfileServer> start_parca_server() { return std::make_unique<ParcaServer>(); }

}  // namespace leakwatch::testing
