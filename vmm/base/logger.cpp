#include "vmm/base/logger.hpp"

#include <fcntl.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "vmm/base/error.hpp"

namespace vmm {

namespace {

constexpr std::array<std::string_view, 6> kLevelNames = {"Off",  "Error", "Warning",
                                                         "Info", "Debug", "Trace"};

bool equal_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

// "2026-12-01T16:00:00.123456Z " (RFC 3339, UTC, microseconds).
void append_timestamp(std::string& out) {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    tm utc{};
    ::gmtime_r(&now.tv_sec, &utc);
    fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z ",
                   utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                   utc.tm_sec, now.tv_nsec / 1000);
}

// This file is <source root>/vmm/logger.cpp: what precedes that is the prefix
// that makes __FILE__ paths relative.
std::string_view source_root() {
    std::string_view self = __FILE__;
    constexpr std::string_view kSelf = "vmm/base/logger.cpp";
    if (self.size() >= kSelf.size() && self.substr(self.size() - kSelf.size()) == kSelf) {
        return self.substr(0, self.size() - kSelf.size());
    }
    return {};
}

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view name) {
    for (size_t i = 0; i < kLevelNames.size(); ++i) {
        if (equal_ignoring_case(name, kLevelNames[i])) {
            return static_cast<LogLevel>(i);
        }
    }
    return std::nullopt;
}

std::string_view log_level_name(LogLevel level) {
    return kLevelNames.at(static_cast<size_t>(level));
}

Logger& Logger::instance() {
    static Logger logger;
    return logger;
}

void Logger::configure(const LoggerConfig& config) {
    UniqueFd file;
    if (config.log_path) {
        const std::string& path = *config.log_path;
        file.reset(
            ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600));
        if (!file.valid()) {
            int error = errno;
            // ENXIO: a named pipe without a reader (Firecracker wants one too).
            throw Error(fmt::format("cannot open log file '{}': {}{}", path, std::strerror(error),
                                    error == ENXIO ? " (a named pipe needs a reader)" : ""));
        }
    }
    std::lock_guard lock(mutex_);
    file_ = std::move(file);
    file_fd_.store(file_.valid() ? file_.get() : -1, std::memory_order_relaxed);
    path_ = config.log_path.value_or("");
    failure_reported_ = false;
    show_level_ = config.show_level;
    show_log_origin_ = config.show_log_origin;
    module_ = config.module.value_or("");
    has_module_.store(!module_.empty(), std::memory_order_relaxed);
    max_level_.store(static_cast<int>(config.level), std::memory_order_relaxed);
}

std::string_view Logger::relative_path(const char* file) const {
    std::string_view path = file;
    static const std::string_view root = source_root();
    if (!root.empty() && path.substr(0, root.size()) == root) {
        path.remove_prefix(root.size());
    }
    return path;
}

bool Logger::wants(LogLevel level, const char* file) const {
    if (!enabled(level)) {
        return false;
    }
    if (!has_module_.load(std::memory_order_relaxed)) {
        return true;
    }
    std::lock_guard lock(mutex_);
    return module_.empty() || relative_path(file).find(module_) != std::string_view::npos;
}

void Logger::write(LogLevel level, const char* file, int line, std::string_view message) {
    if (!wants(level, file)) {
        return;
    }
    std::string text;
    text.reserve(message.size() + 64);
    std::lock_guard lock(mutex_);
    if (file_.valid()) {
        append_timestamp(text);
    }
    text += "vmm: ";
    if (show_level_) {
        fmt::format_to(std::back_inserter(text), "[{}] ", log_level_name(level));
    }
    if (show_log_origin_) {
        fmt::format_to(std::back_inserter(text), "{}:{}: ", relative_path(file), line);
    }
    text += message;
    // One write(2) of at most PIPE_BUF bytes: atomic on a pipe.
    if (text.size() > PIPE_BUF - 1) {
        text.resize(PIPE_BUF - 1);
    }
    text += '\n';

    int fd = file_.valid() ? file_.get() : STDERR_FILENO;
    size_t done = 0;
    int error = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n > 0) {
            done += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            error = n < 0 ? errno : EIO;
            break;  // EAGAIN (full pipe), EPIPE (reader gone), ...: drop the line
        }
    }
    if (done == text.size()) {
        written_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    dropped_.fetch_add(1, std::memory_order_relaxed);
    // A full pipe is a reader that is behind: counted only. Anything else
    // (ENOSPC, EIO, a reader gone) would silence the log for good: said once
    // on stderr, the one place left to say it.
    if (file_.valid() && error != EAGAIN && !failure_reported_) {
        failure_reported_ = true;
        std::string notice = fmt::format(
            "vmm: cannot write to the log file '{}' ({}): its lines are dropped and counted "
            "(log_lines_dropped)\n",
            path_, std::strerror(error));
        [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, notice.data(), notice.size());
    }
}

}  // namespace vmm
