// Small helpers shared by the daemons and tools: time, files, sizes,
// logging set-up and signal handling. All thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace stria {

// Wall-clock time in nanoseconds since the epoch (for file times).
int64_t NowNs();
// Monotonic milliseconds (for leases and heartbeats).
int64_t MonoMs();

// Writes content to path via a temporary file, fsync and rename.
Status WriteFileAtomic(const std::string& path, const std::string& content);
// The same without the fsync, for files that only describe a running
// process (port and pid files): readers still see the old or the new file
// whole, and start-up does not wait behind other processes' dirty data,
// which an fsync on ext4 can for many seconds.
Status ReplaceFile(const std::string& path, const std::string& content);
Result<std::string> ReadFile(const std::string& path);

// "4096", "64k", "1M", "2GiB" -> bytes. EINVAL names the bad text.
Result<uint64_t> ParseSize(const std::string& text);
// 1536 -> "1.5 KiB".
std::string HumanBytes(uint64_t bytes);

// Sends spdlog's default logger to file (or stderr when file is empty) at
// level ("trace", "debug", "info", "warn", "error"), each line tagged name.
Status InitLogging(const std::string& file, const std::string& level, const std::string& name);

// Blocks SIGINT and SIGTERM in the calling thread (call first in main, so
// every thread inherits the mask) and later waits for one of them.
void BlockTerminationSignals();
int WaitForTerminationSignal();

}  // namespace stria
