// Prometheus metrics: counters, gauges and latency histograms, rendered in
// the text exposition format by the admin HTTP server (/metrics).
//
// Threading: metric objects are updated lock-free (atomics) from any thread;
// looking a labelled child up takes the family's mutex, so hot paths should
// keep the returned reference. References stay valid for the process's life.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace stria::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Set(double v) { v_.store(v, std::memory_order_relaxed); }
  void Add(double d);
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

// Latency histogram in seconds, buckets from 25 µs to 10 s.
class Histogram {
 public:
  static const std::vector<double>& Bounds();
  Histogram();
  void Observe(double seconds);
  void Render(const std::string& name, const std::string& labels, std::string& out) const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

enum class Kind { kCounter, kGauge, kHistogram };

class Family {
 public:
  Family(std::string name, std::string help, Kind kind)
      : name_(std::move(name)), help_(std::move(help)), kind_(kind) {}
  metrics::Counter& Counter(const Labels& labels);
  metrics::Gauge& Gauge(const Labels& labels);
  metrics::Histogram& Histogram(const Labels& labels);
  void Render(std::string& out) const;

 private:
  struct Child {
    metrics::Counter counter;
    metrics::Gauge gauge;
    metrics::Histogram histogram;
  };
  Child& Get(const Labels& labels);

  std::string name_, help_;
  Kind kind_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Child>> children_;   // key: rendered labels
};

class Registry {
 public:
  static Registry& Default();

  Family& CounterFamily(const std::string& name, const std::string& help);
  Family& GaugeFamily(const std::string& name, const std::string& help);
  Family& HistogramFamily(const std::string& name, const std::string& help);
  Counter& GetCounter(const std::string& name, const std::string& help);
  Gauge& GetGauge(const std::string& name, const std::string& help);

  // A collector appends freshly computed metrics (in text format) at each
  // scrape, for values that are cheaper to read than to track (capacity).
  void AddCollector(std::function<void(std::string&)> fn);

  std::string Render() const;

 private:
  Family& GetFamily(const std::string& name, const std::string& help, Kind kind);
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>> families_;
  std::vector<std::function<void(std::string&)>> collectors_;
};

// Renders labels as {a="x",b="y"} with escaping; "" for none.
std::string RenderLabels(const Labels& labels);

}  // namespace stria::metrics
