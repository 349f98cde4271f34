#include "common/metrics.h"

#include <fmt/format.h>

namespace stria::metrics {

void Gauge::Add(double d) {
  double cur = v_.load(std::memory_order_relaxed);
  while (!v_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
  }
}

const std::vector<double>& Histogram::Bounds() {
  static const std::vector<double> kBounds = {25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3,
                                              2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3,
                                              250e-3, 500e-3, 1, 2.5, 5, 10};
  return kBounds;
}

Histogram::Histogram() : buckets_(new std::atomic<uint64_t>[Bounds().size() + 1]) {
  for (size_t i = 0; i <= Bounds().size(); i++) buckets_[i] = 0;
}

void Histogram::Observe(double s) {
  const auto& b = Bounds();
  size_t i = 0;
  while (i < b.size() && s > b[i]) i++;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double cur = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(cur, cur + s, std::memory_order_relaxed)) {
  }
}

void Histogram::Render(const std::string& name, const std::string& labels, std::string& out) const {
  // labels is "{...}" or ""; bucket lines need le added inside the braces.
  std::string inner = labels.empty() ? "" : labels.substr(1, labels.size() - 2) + ",";
  uint64_t cum = 0;
  const auto& b = Bounds();
  for (size_t i = 0; i < b.size(); i++) {
    cum += buckets_[i].load(std::memory_order_relaxed);
    out += fmt::format("{}_bucket{{{}le=\"{}\"}} {}\n", name, inner, b[i], cum);
  }
  cum += buckets_[b.size()].load(std::memory_order_relaxed);
  out += fmt::format("{}_bucket{{{}le=\"+Inf\"}} {}\n", name, inner, cum);
  out += fmt::format("{}_sum{} {}\n", name, labels, sum_.load(std::memory_order_relaxed));
  out += fmt::format("{}_count{} {}\n", name, labels, count_.load(std::memory_order_relaxed));
}

std::string RenderLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string s = "{";
  for (size_t i = 0; i < labels.size(); i++) {
    if (i) s += ",";
    s += labels[i].first + "=\"";
    for (char c : labels[i].second) {
      if (c == '\\' || c == '"') s += '\\';
      if (c == '\n') {
        s += "\\n";
        continue;
      }
      s += c;
    }
    s += "\"";
  }
  return s + "}";
}

Family::Child& Family::Get(const Labels& labels) {
  std::string key = RenderLabels(labels);
  std::lock_guard lk(mu_);
  auto& c = children_[key];
  if (!c) c = std::make_unique<Child>();
  return *c;
}

Counter& Family::Counter(const Labels& l) { return Get(l).counter; }
Gauge& Family::Gauge(const Labels& l) { return Get(l).gauge; }
Histogram& Family::Histogram(const Labels& l) { return Get(l).histogram; }

void Family::Render(std::string& out) const {
  static const char* kTypes[] = {"counter", "gauge", "histogram"};
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name_, help_, name_,
                     kTypes[static_cast<int>(kind_)]);
  std::lock_guard lk(mu_);
  for (const auto& [labels, c] : children_) {
    switch (kind_) {
      case Kind::kCounter: out += fmt::format("{}{} {}\n", name_, labels, c->counter.value()); break;
      case Kind::kGauge: out += fmt::format("{}{} {}\n", name_, labels, c->gauge.value()); break;
      case Kind::kHistogram: c->histogram.Render(name_, labels, out); break;
    }
  }
}

Registry& Registry::Default() {
  static Registry* r = new Registry();
  return *r;
}

Family& Registry::GetFamily(const std::string& name, const std::string& help, Kind kind) {
  std::lock_guard lk(mu_);
  auto& f = families_[name];
  if (!f) f = std::make_unique<Family>(name, help, kind);
  return *f;
}

Family& Registry::CounterFamily(const std::string& n, const std::string& h) {
  return GetFamily(n, h, Kind::kCounter);
}
Family& Registry::GaugeFamily(const std::string& n, const std::string& h) {
  return GetFamily(n, h, Kind::kGauge);
}
Family& Registry::HistogramFamily(const std::string& n, const std::string& h) {
  return GetFamily(n, h, Kind::kHistogram);
}
Counter& Registry::GetCounter(const std::string& n, const std::string& h) {
  return CounterFamily(n, h).Counter({});
}
Gauge& Registry::GetGauge(const std::string& n, const std::string& h) {
  return GaugeFamily(n, h).Gauge({});
}

void Registry::AddCollector(std::function<void(std::string&)> fn) {
  std::lock_guard lk(mu_);
  collectors_.push_back(std::move(fn));
}

std::string Registry::Render() const {
  std::string out;
  std::vector<std::function<void(std::string&)>> collectors;
  {
    std::lock_guard lk(mu_);
    for (const auto& [name, f] : families_) f->Render(out);
    collectors = collectors_;
  }
  for (auto& c : collectors) c(out);
  return out;
}

}  // namespace stria::metrics
