#include "common/util.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace stria {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t MonoMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {
Status WriteAndRename(const std::string& path, const std::string& content, bool sync) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Err(errno, "create {}: {}", tmp, std::strerror(errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return Err(e, "write {}: {}", tmp, std::strerror(e));
    }
    done += static_cast<size_t>(n);
  }
  if (sync && ::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    return Err(e, "fsync {}: {}", tmp, std::strerror(e));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Err(errno, "rename {} to {}: {}", tmp, path, std::strerror(errno));
  }
  return Status::Ok();
}
}  // namespace

Status WriteFileAtomic(const std::string& path, const std::string& content) {
  return WriteAndRename(path, content, /*sync=*/true);
}

Status ReplaceFile(const std::string& path, const std::string& content) {
  return WriteAndRename(path, content, /*sync=*/false);
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Err(errno ? errno : ENOENT, "read {}: {}", path, std::strerror(errno ? errno : ENOENT));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<uint64_t> ParseSize(const std::string& text) {
  if (text.empty()) return Err(EINVAL, "empty size");
  size_t i = 0;
  uint64_t v = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (v > (UINT64_MAX - 9) / 10) return Err(EINVAL, "size '{}' is too large", text);
    v = v * 10 + (text[i++] - '0');
  }
  if (i == 0) return Err(EINVAL, "size '{}' does not start with a number", text);
  std::string unit = text.substr(i);
  for (auto& c : unit) c = static_cast<char>(std::tolower(c));
  uint64_t mul = 1;
  if (unit.empty() || unit == "b") mul = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib") mul = 1ull << 10;
  else if (unit == "m" || unit == "mb" || unit == "mib") mul = 1ull << 20;
  else if (unit == "g" || unit == "gb" || unit == "gib") mul = 1ull << 30;
  else if (unit == "t" || unit == "tb" || unit == "tib") mul = 1ull << 40;
  else return Err(EINVAL, "size '{}' has an unknown unit '{}' (use k, M, G or T)", text, unit);
  if (v > UINT64_MAX / mul) return Err(EINVAL, "size '{}' is too large", text);
  return v * mul;
}

std::string HumanBytes(uint64_t b) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    u++;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.1f} {}", v, kUnits[u]);
}

Status InitLogging(const std::string& file, const std::string& level, const std::string& name) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return Err(EINVAL, "unknown log level '{}' (trace, debug, info, warn, error)", level);
  }
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (file.empty()) {
      logger = std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
    } else {
      logger = std::make_shared<spdlog::logger>(
          name, std::make_shared<spdlog::sinks::basic_file_sink_mt>(file));
    }
  } catch (const std::exception& e) {
    return Err(EIO, "log file {}: {}", file, e.what());
  }
  logger->set_level(lvl);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n %t] %v");
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return Status::Ok();
}

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

int WaitForTerminationSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

}  // namespace stria
