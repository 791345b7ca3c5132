// The VMM's log: levels as Firecracker's PUT /logger names them, written to
// stderr or to a file or named pipe, from any thread, never blocking.
//
// Line format (stderr):       vmm: [Level] file:line: message
// Line format (log_path):     2026-12-01T16:00:00.123456Z vmm: [Level] file:line: message
// "[Level] " only with show_level, "file:line: " only with show_log_origin; file
// is relative to the source tree ("devices/virtio/mmio_transport.cpp").
//
// `module`: when set, only messages from source files whose path contains it
// are kept ("virtio/net" keeps virtio-net's lines, "devices/legacy" the legacy
// devices'). Firecracker filters by Rust module path; a source path is our
// equivalent.
//
// Lines are cut at PIPE_BUF (4096) bytes so that a write to a pipe is all or
// nothing; a line that finds the pipe full is dropped and counted
// (`lines_dropped`), so a slow reader never stalls a vCPU. Any other write
// error of log_path (a full disk, /dev/full) is said once on stderr.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>

#include "vmm/base/unique_fd.hpp"

namespace vmm {

enum class LogLevel { Off, Error, Warning, Info, Debug, Trace };

// Firecracker's names (Error, Warning, Info, Debug, Trace, Off), any case.
std::optional<LogLevel> parse_log_level(std::string_view name);
std::string_view log_level_name(LogLevel level);

struct LoggerConfig {
    std::optional<std::string> log_path;  // stderr when not set
    LogLevel level = LogLevel::Info;
    bool show_level = false;
    bool show_log_origin = false;
    std::optional<std::string> module;
};

class Logger {
  public:
    static Logger& instance();

    // Opens log_path (O_APPEND | O_CREAT | O_NONBLOCK, mode 0600; a named pipe
    // must already have a reader, as with Firecracker) or goes back to stderr.
    // Throws Error naming the path; the previous configuration then stays.
    void configure(const LoggerConfig& config);

    // Lock-free, for hot paths.
    bool enabled(LogLevel level) const {
        return level != LogLevel::Off &&
               static_cast<int>(level) <= max_level_.load(std::memory_order_relaxed);
    }
    // enabled() and the module filter: whether a message from `file` is kept.
    bool wants(LogLevel level, const char* file) const;

    // Thread-safe. `file` is a __FILE__ / source_location path.
    void write(LogLevel level, const char* file, int line, std::string_view message);

    uint64_t lines_written() const { return written_.load(std::memory_order_relaxed); }
    uint64_t lines_dropped() const { return dropped_.load(std::memory_order_relaxed); }
    // The log file's descriptor (-1: stderr), for a last line from a signal
    // handler, which may take no lock.
    int file_fd() const { return file_fd_.load(std::memory_order_relaxed); }

  private:
    Logger() = default;
    std::string_view relative_path(const char* file) const;

    std::atomic<int> max_level_{static_cast<int>(LogLevel::Info)};
    std::atomic<bool> has_module_{false};
    std::atomic<uint64_t> written_{0};
    std::atomic<uint64_t> dropped_{0};
    std::atomic<int> file_fd_{-1};

    mutable std::mutex mutex_;  // guards everything below and each write(2)
    UniqueFd file_;             // not valid: stderr
    std::string path_;          // log_path, for the write error notice
    bool failure_reported_ = false;
    bool show_level_ = false;
    bool show_log_origin_ = false;
    std::string module_;
};

// A format string checked at compile time, plus where the call is.
template <typename... Args>
struct LogFormat {
    // __builtin_FILE/LINE rather than std::source_location: clang 14 (the
    // fuzzers' compiler) cannot build libstdc++ 12's source_location.
    template <typename S>
    consteval LogFormat(const S& text, const char* file = __builtin_FILE(),
                        int line = __builtin_LINE())
        : format(text), file(file), line(line) {}
    fmt::format_string<Args...> format;
    const char* file;
    int line;
};

template <typename... Args>
void log_at(LogLevel level, LogFormat<std::type_identity_t<Args>...> format, Args&&... args) {
    Logger& logger = Logger::instance();
    if (!logger.wants(level, format.file)) {
        return;  // nothing formatted
    }
    logger.write(level, format.file, format.line,
                 fmt::format(format.format, std::forward<Args>(args)...));
}

template <typename... Args>
void log_error(LogFormat<std::type_identity_t<Args>...> format, Args&&... args) {
    log_at<Args...>(LogLevel::Error, format, std::forward<Args>(args)...);
}
template <typename... Args>
void log_warning(LogFormat<std::type_identity_t<Args>...> format, Args&&... args) {
    log_at<Args...>(LogLevel::Warning, format, std::forward<Args>(args)...);
}
template <typename... Args>
void log_info(LogFormat<std::type_identity_t<Args>...> format, Args&&... args) {
    log_at<Args...>(LogLevel::Info, format, std::forward<Args>(args)...);
}
template <typename... Args>
void log_debug(LogFormat<std::type_identity_t<Args>...> format, Args&&... args) {
    log_at<Args...>(LogLevel::Debug, format, std::forward<Args>(args)...);
}
template <typename... Args>
void log_trace(LogFormat<std::type_identity_t<Args>...> format, Args&&... args) {
    log_at<Args...>(LogLevel::Trace, format, std::forward<Args>(args)...);
}

}  // namespace vmm
