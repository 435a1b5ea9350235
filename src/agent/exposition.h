// Prometheus text exposition format (version 0.0.4) builder: samples are grouped by metric
// family whatever order they are added in, each family with one HELP and TYPE line, label
// values escaped.  Not thread-safe; build one per scrape.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace leakwatch::agent {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Exposition {
 public:
  enum class Type { kGauge, kCounter };

  // Declares a family (first declaration wins) and adds one sample to it.
  void add(const std::string& name, Type type, const std::string& help, const Labels& labels,
           double value);
  void gauge(const std::string& name, const std::string& help, const Labels& labels,
             double value) {
    add(name, Type::kGauge, help, labels, value);
  }
  void counter(const std::string& name, const std::string& help, const Labels& labels,
               double value) {
    add(name, Type::kCounter, help, labels, value);
  }

  std::string text() const;

  static std::string escape_label_value(const std::string& v);
  static std::string format_value(double v);  // +Inf, -Inf, NaN, shortest round-trip

 private:
  struct Family {
    Type type;
    std::string help;
    std::vector<std::string> lines;
  };
  std::vector<std::string> order_;
  std::map<std::string, Family> families_;
};

}  // namespace leakwatch::agent
