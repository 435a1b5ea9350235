#include "sink/sinks.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "common/log.h"

namespace leakwatch::sink {

SinkWorker::SinkWorker(SinkConfig config, std::unique_ptr<Sender> sender)
    : config_(std::move(config)), sender_(std::move(sender)), rng_(std::random_device{}()) {
  stats_.sink = config_.name();
  thread_ = std::thread([this] { run(); });
}

SinkWorker::~SinkWorker() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SinkWorker::submit(Profile p) {
  {
    std::lock_guard lock(mu_);
    if (stop_) {
      stats_.dropped_shutdown++;
      return;
    }
    // The newest profile matters most: a full queue loses its oldest.
    while (!queue_.empty() && queue_.size() >= std::max<size_t>(config_.queue_size, 1)) {
      queue_.pop_front();
      stats_.dropped_queue_full++;
    }
    queue_.push_back(std::move(p));
  }
  cv_.notify_all();
}

SinkStats SinkWorker::stats() const {
  std::lock_guard lock(mu_);
  SinkStats s = stats_;
  s.queued = queue_.size() + (in_flight_ ? 1 : 0);
  return s;
}

bool SinkWorker::sleep_for(double seconds) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return stop_; });
  return !stop_;
}

void SinkWorker::run() {
  for (;;) {
    Profile p;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) {
        stats_.dropped_shutdown += queue_.size();
        queue_.clear();
        return;
      }
      p = std::move(queue_.front());
      queue_.pop_front();
      in_flight_ = true;
    }
    for (int attempt = 1;; ++attempt) {
      std::optional<SendError> err = sender_->send(p);
      std::unique_lock lock(mu_);
      if (!err) {
        stats_.pushed++;
        break;
      }
      stats_.attempts_failed++;
      stats_.last_error = err->message;
      if (!err->retryable) {
        stats_.dropped_rejected++;
        log::warn("agent: sink {}: profile {} rejected: {}", stats_.sink, p.id, err->message);
        break;
      }
      if (attempt >= config_.max_attempts) {
        stats_.dropped_attempts++;
        log::warn("agent: sink {}: profile {} dropped after {} attempts: {}", stats_.sink, p.id,
                  attempt, err->message);
        break;
      }
      if (stop_) {
        stats_.dropped_shutdown++;
        break;
      }
      // Exponential backoff with jitter: retries of many agents do not arrive together.
      const double base = std::min(60.0, config_.backoff_s * std::ldexp(1.0, attempt - 1));
      const double delay = base * std::uniform_real_distribution<double>(0.8, 1.2)(rng_);
      log::debug("agent: sink {}: attempt {} failed ({}), retrying in {:.1f}s", stats_.sink,
                 attempt, err->message, delay);
      lock.unlock();
      if (!sleep_for(delay)) {
        std::lock_guard relock(mu_);
        stats_.dropped_shutdown++;
        break;
      }
    }
    std::lock_guard lock(mu_);
    in_flight_ = false;
    idle_cv_.notify_all();
  }
}

bool SinkWorker::wait_idle(double timeout_s) const {
  std::unique_lock lock(mu_);
  return idle_cv_.wait_for(lock, std::chrono::duration<double>(timeout_s),
                           [&] { return queue_.empty() && !in_flight_; });
}

Result<std::unique_ptr<Sinks>> Sinks::create(const std::vector<SinkConfig>& configs) {
  auto sinks = std::make_unique<Sinks>();
  for (const SinkConfig& c : configs) {
    auto sender = make_sender(c);
    if (!sender) return fail("sink {} (line {}): {}", c.name(), c.line, sender.error().message);
    sinks->workers_.push_back(std::make_unique<SinkWorker>(c, std::move(*sender)));
  }
  return sinks;
}

void Sinks::submit(const Profile& p) {
  for (auto& w : workers_) {
    Profile copy = p;
    for (auto& [k, v] : w->config().labels) copy.labels.emplace_back(k, v);
    w->submit(std::move(copy));
  }
}

bool Sinks::wait_idle(double timeout_s) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (auto& w : workers_) {
    const double left =
        std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
    if (!w->wait_idle(std::max(0.0, left))) return false;
  }
  return true;
}

std::vector<SinkStats> Sinks::stats() const {
  std::vector<SinkStats> out;
  for (auto& w : workers_) out.push_back(w->stats());
  return out;
}

}  // namespace leakwatch::sink
