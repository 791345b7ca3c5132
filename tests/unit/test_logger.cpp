// Logger: levels, line formats, log files, named pipes, parse_log_level.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "vmm/base/error.hpp"
#include "vmm/base/logger.hpp"

using vmm::LoggerConfig;
using vmm::LogLevel;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char name[] = "/tmp/vmm-logger-test-XXXXXX";
        REQUIRE(::mkdtemp(name) != nullptr);
        path = name;
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

// Points fd 2 at `path` until destroyed (or until restore()).
struct StderrToFile {
    explicit StderrToFile(const std::string& path) : saved(::dup(STDERR_FILENO)) {
        REQUIRE(saved >= 0);
        int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        REQUIRE(file >= 0);
        ::dup2(file, STDERR_FILENO);
        ::close(file);
    }
    ~StderrToFile() { restore(); }
    void restore() {
        if (saved >= 0) {
            ::dup2(saved, STDERR_FILENO);
            ::close(saved);
            saved = -1;
        }
    }
    int saved;
};

// Every test leaves the process-wide logger as it found it: stderr, Info.
struct RestoreLogger {
    ~RestoreLogger() { vmm::Logger::instance().configure(LoggerConfig{}); }
};

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    return lines;
}

// The line without its "2026-...Z " timestamp, which must be there.
std::string without_timestamp(const std::string& line) {
    static const std::regex kTimestamp(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z )");
    std::smatch match;
    REQUIRE(std::regex_search(line, match, kTimestamp));
    return match.suffix();
}

void configure_file(const std::string& path, LogLevel level, bool show_level = false,
                    bool show_origin = false) {
    LoggerConfig config;
    config.log_path = path;
    config.level = level;
    config.show_level = show_level;
    config.show_log_origin = show_origin;
    vmm::Logger::instance().configure(config);
}

// Counts how often fmt formats it.
struct CountedFormat {
    static inline int count = 0;
};

}  // namespace

template <>
struct fmt::formatter<CountedFormat> : fmt::formatter<std::string_view> {
    auto format(const CountedFormat&, fmt::format_context& ctx) const {
        ++CountedFormat::count;
        return fmt::formatter<std::string_view>::format("counted", ctx);
    }
};

TEST_CASE("parse_log_level takes Firecracker's names in any case", "[logger]") {
    CHECK(vmm::parse_log_level("Error") == LogLevel::Error);
    CHECK(vmm::parse_log_level("warning") == LogLevel::Warning);
    CHECK(vmm::parse_log_level("INFO") == LogLevel::Info);
    CHECK(vmm::parse_log_level("Debug") == LogLevel::Debug);
    CHECK(vmm::parse_log_level("tRaCe") == LogLevel::Trace);
    CHECK(vmm::parse_log_level("Off") == LogLevel::Off);
    CHECK_FALSE(vmm::parse_log_level("WARN"));
    CHECK_FALSE(vmm::parse_log_level(""));
    CHECK_FALSE(vmm::parse_log_level("Info "));
    CHECK(vmm::log_level_name(LogLevel::Warning) == "Warning");
}

TEST_CASE("Logger keeps messages at or above its level", "[logger]") {
    RestoreLogger restore;
    TempDir dir;
    std::string path = dir.path + "/log";
    configure_file(path, LogLevel::Warning);
    auto& logger = vmm::Logger::instance();
    CHECK(logger.enabled(LogLevel::Error));
    CHECK(logger.enabled(LogLevel::Warning));
    CHECK_FALSE(logger.enabled(LogLevel::Info));
    CHECK_FALSE(logger.enabled(LogLevel::Off));

    vmm::log_error("e {}", 1);
    vmm::log_warning("w {}", 2);
    vmm::log_info("i {}", 3);
    vmm::log_debug("d {}", 4);
    vmm::log_trace("t {}", 5);
    auto lines = read_lines(path);
    REQUIRE(lines.size() == 2);
    CHECK(without_timestamp(lines[0]) == "vmm: e 1");
    CHECK(without_timestamp(lines[1]) == "vmm: w 2");

    configure_file(path, LogLevel::Off);
    CHECK_FALSE(logger.enabled(LogLevel::Error));
    vmm::log_error("not written");
    CHECK(read_lines(path).size() == 2);

    configure_file(path, LogLevel::Trace);
    vmm::log_trace("t");
    CHECK(read_lines(path).size() == 3);
}

TEST_CASE("Logger does not format a disabled message", "[logger]") {
    RestoreLogger restore;
    TempDir dir;
    configure_file(dir.path + "/log", LogLevel::Error);
    CountedFormat::count = 0;
    vmm::log_debug("{}", CountedFormat{});
    CHECK(CountedFormat::count == 0);
    vmm::log_error("{}", CountedFormat{});
    CHECK(CountedFormat::count == 1);
    auto lines = read_lines(dir.path + "/log");
    REQUIRE(lines.size() == 1);
    CHECK(without_timestamp(lines[0]) == "vmm: counted");
}

TEST_CASE("Logger show_level and show_log_origin", "[logger]") {
    RestoreLogger restore;
    TempDir dir;
    std::string path = dir.path + "/log";

    configure_file(path, LogLevel::Info, true, false);
    vmm::log_warning("careful");
    configure_file(path, LogLevel::Info, false, true);
    int line = __LINE__ + 1;
    vmm::log_info("here");
    configure_file(path, LogLevel::Info, true, true);
    vmm::log_error("both");

    auto lines = read_lines(path);
    REQUIRE(lines.size() == 3);
    CHECK(without_timestamp(lines[0]) == "vmm: [Warning] careful");
    CHECK(without_timestamp(lines[1]) ==
          "vmm: tests/unit/test_logger.cpp:" + std::to_string(line) + ": here");
    CHECK(without_timestamp(lines[2]).starts_with("vmm: [Error] tests/unit/test_logger.cpp:"));
    CHECK(without_timestamp(lines[2]).ends_with(": both"));
}

TEST_CASE("Logger on stderr writes exactly 'vmm: message'", "[logger]") {
    RestoreLogger restore;
    TempDir dir;
    std::string path = dir.path + "/stderr";
    vmm::Logger::instance().configure(LoggerConfig{});
    StderrToFile redirect(path);
    vmm::log_warning("virtio-net {}: link down", "net0");
    vmm::log_debug("hidden at Info");
    redirect.restore();
    auto lines = read_lines(path);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "vmm: virtio-net net0: link down");
}

TEST_CASE("Logger module filter keeps matching source paths", "[logger]") {
    RestoreLogger restore;
    TempDir dir;
    std::string path = dir.path + "/log";
    LoggerConfig config;
    config.log_path = path;
    config.module = "tests/unit";
    vmm::Logger::instance().configure(config);
    vmm::log_info("kept");
    vmm::Logger::instance().write(LogLevel::Info, "/src/devices/legacy/i8042.cpp", 1, "dropped");
    config.module = "devices/legacy";
    vmm::Logger::instance().configure(config);
    vmm::log_info("dropped");
    vmm::Logger::instance().write(LogLevel::Info, "devices/legacy/i8042.cpp", 1, "kept too");
    auto lines = read_lines(path);
    REQUIRE(lines.size() == 2);
    CHECK(without_timestamp(lines[0]) == "vmm: kept");
    CHECK(without_timestamp(lines[1]) == "vmm: kept too");
}

TEST_CASE("Logger appends to an existing file, created with mode 0600", "[logger]") {
    RestoreLogger restore;
    TempDir dir;
    std::string path = dir.path + "/log";
    configure_file(path, LogLevel::Info);
    vmm::log_info("one");
    configure_file(path, LogLevel::Info);
    vmm::log_info("two");
    auto lines = read_lines(path);
    REQUIRE(lines.size() == 2);
    CHECK(without_timestamp(lines[1]) == "vmm: two");
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("Logger refuses a path it cannot open and keeps its configuration", "[logger]") {
    RestoreLogger restore;
    TempDir dir;
    std::string path = dir.path + "/log";
    configure_file(path, LogLevel::Info);
    std::string bad = dir.path + "/no/such/dir/log";
    CHECK_THROWS_WITH(configure_file(bad, LogLevel::Debug), Catch::Contains(bad));
    CHECK_FALSE(vmm::Logger::instance().enabled(LogLevel::Debug));
    vmm::log_info("still here");
    CHECK(read_lines(path).size() == 1);
}

TEST_CASE("Logger refuses a named pipe without a reader", "[logger]") {
    RestoreLogger restore;
    TempDir dir;
    std::string fifo = dir.path + "/fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // O_NONBLOCK open for writing of a FIFO nobody reads fails with ENXIO.
    CHECK_THROWS_WITH(configure_file(fifo, LogLevel::Info),
                      Catch::Contains(fifo) && Catch::Contains("needs a reader"));
}

TEST_CASE("Logger drops lines to a full pipe instead of blocking", "[logger]") {
    RestoreLogger restore;
    TempDir dir;
    std::string fifo = dir.path + "/fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
    REQUIRE(reader >= 0);
    configure_file(fifo, LogLevel::Info);
    auto& logger = vmm::Logger::instance();
    uint64_t written = logger.lines_written();
    uint64_t dropped = logger.lines_dropped();
    // Nobody reads: a 64 KiB pipe fills after a few hundred lines, the rest
    // are dropped (a blocking write would hang the test here).
    std::string filler(200, 'x');
    for (int i = 0; i < 2000; ++i) {
        vmm::log_info("{} {}", i, filler);
    }
    CHECK(logger.lines_written() > written);
    CHECK(logger.lines_dropped() > dropped);
    CHECK(logger.lines_written() - written + logger.lines_dropped() - dropped == 2000);

    // What did get through is whole lines.
    std::string data(1 << 20, '\0');
    ssize_t n = ::read(reader, data.data(), data.size());
    REQUIRE(n > 0);
    data.resize(static_cast<size_t>(n));
    CHECK(data.back() == '\n');
    std::istringstream in(data);
    int expected = 0;
    for (std::string line; std::getline(in, line); ++expected) {
        CHECK(without_timestamp(line) == "vmm: " + std::to_string(expected) + " " + filler);
    }
    ::close(reader);
}

// A log that cannot be written (a full disk) would silence the VMM: the
// first failure is said on stderr, once; every lost line is counted.
TEST_CASE("Logger says once on stderr that its file cannot be written", "[logger]") {
    RestoreLogger restore;
    TempDir dir;
    std::string path = dir.path + "/stderr";
    StderrToFile redirect(path);
    configure_file("/dev/full", LogLevel::Info);
    auto& logger = vmm::Logger::instance();
    uint64_t dropped = logger.lines_dropped();
    for (int i = 0; i < 3; ++i) {
        vmm::log_info("line {}", i);
    }
    redirect.restore();
    CHECK(logger.lines_dropped() - dropped == 3);
    auto lines = read_lines(path);
    REQUIRE(lines.size() == 1);
    CHECK_THAT(lines[0], Catch::Contains("cannot write to the log file '/dev/full'") &&
                             Catch::Contains("No space left on device"));
}

TEST_CASE("Logger cuts very long lines to one pipe write", "[logger]") {
    RestoreLogger restore;
    TempDir dir;
    std::string path = dir.path + "/log";
    configure_file(path, LogLevel::Info);
    vmm::log_info("{}", std::string(10000, 'y'));
    auto lines = read_lines(path);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].size() == 4095);
}
