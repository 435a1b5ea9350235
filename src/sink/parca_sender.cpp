// Parca's WriteRaw over gRPC (grpc++; TLS unless `insecure`).
#include <grpcpp/grpcpp.h>

#include <chrono>

#include "parca_profilestore.grpc.pb.h"
#include "sink/sender.h"

namespace leakwatch::sink {
namespace {

namespace pb = parca::profilestore::v1alpha1;

class ParcaSender : public Sender {
 public:
  explicit ParcaSender(SinkConfig c) : c_(std::move(c)) {
    auto creds = c_.insecure ? grpc::InsecureChannelCredentials()
                             : grpc::SslCredentials(grpc::SslCredentialsOptions());
    channel_ = grpc::CreateChannel(c_.endpoint, creds);
    stub_ = pb::ProfileStoreService::NewStub(channel_);
  }

  std::optional<SendError> send(const Profile& p) override {
    pb::WriteRawRequest req;
    req.set_normalized(false);
    auto* series = req.add_series();
    for (auto& [k, v] : p.labels) {
      auto* l = series->mutable_labels()->add_labels();
      l->set_name(k);
      l->set_value(v);
    }
    series->add_samples()->set_raw_profile(p.pprof_gz);

    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(c_.timeout_s * 1000)));
    // Read on every push: a projected service-account token rotates.
    auto token = read_bearer_token(c_.bearer_token_file);
    if (!token) return SendError{token.error().message, true};
    if (!token->empty()) ctx.AddMetadata("authorization", "Bearer " + *token);
    pb::WriteRawResponse resp;
    grpc::Status st = stub_->WriteRaw(&ctx, req, &resp);
    if (st.ok()) return std::nullopt;
    const auto code = st.error_code();
    // Transient conditions are retried; the rest (INVALID_ARGUMENT, UNAUTHENTICATED,
    // PERMISSION_DENIED, UNIMPLEMENTED...) reject this profile for good.
    const bool retryable = code == grpc::StatusCode::UNAVAILABLE ||
                           code == grpc::StatusCode::DEADLINE_EXCEEDED ||
                           code == grpc::StatusCode::RESOURCE_EXHAUSTED ||
                           code == grpc::StatusCode::ABORTED ||
                           code == grpc::StatusCode::INTERNAL ||
                           code == grpc::StatusCode::UNKNOWN;
    return SendError{fmt::format("gRPC {}: {}", static_cast<int>(code), st.error_message()),
                     retryable};
  }

 private:
  SinkConfig c_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::ProfileStoreService::Stub> stub_;
};

}  // namespace

Result<std::unique_ptr<Sender>> make_parca_sender(const SinkConfig& c) {
  if (c.endpoint.empty() || c.endpoint.find(':') == std::string::npos)
    return fail("parca sink: expected HOST:PORT, got \"{}\"", c.endpoint);
  if (auto t = read_bearer_token(c.bearer_token_file); !t) return std::unexpected(t.error());
  return std::make_unique<ParcaSender>(c);
}

}  // namespace leakwatch::sink
