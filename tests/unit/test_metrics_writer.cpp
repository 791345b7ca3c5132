// MetricsWriter: JSON lines on flush and on a timer, never blocking on a pipe.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "vmm/base/error.hpp"
#include "vmm/core/metrics_writer.hpp"

using nlohmann::json;
using vmm::MetricsWriter;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char name[] = "/tmp/vmm-metrics-test-XXXXXX";
        REQUIRE(::mkdtemp(name) != nullptr);
        path = name;
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    return lines;
}

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

TEST_CASE("MetricsWriter flush writes one JSON line with utc_timestamp_ms", "[metrics]") {
    TempDir dir;
    std::string path = dir.path + "/metrics";
    boost::asio::io_context io;
    int calls = 0;
    MetricsWriter writer(io, path, [&] {
        ++calls;
        return json{{"vmm", {{"flushes", calls}}}, {"net0", {{"rx_bytes", 1500}}}};
    });
    int64_t before = now_ms();
    writer.flush();
    writer.flush();
    int64_t after = now_ms();

    auto lines = read_lines(path);
    REQUIRE(lines.size() == 2);
    for (size_t i = 0; i < lines.size(); ++i) {
        json line = json::parse(lines[i]);
        CHECK(line["vmm"]["flushes"] == i + 1);
        CHECK(line["net0"]["rx_bytes"] == 1500);
        REQUIRE(line["utc_timestamp_ms"].is_number_integer());
        CHECK(line["utc_timestamp_ms"].get<int64_t>() >= before);
        CHECK(line["utc_timestamp_ms"].get<int64_t>() <= after);
    }
    CHECK(writer.lines_written() == 2);
    CHECK(writer.lines_dropped() == 0);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("MetricsWriter refuses what it cannot collect or open", "[metrics]") {
    TempDir dir;
    boost::asio::io_context io;
    std::string bad = dir.path + "/missing/metrics";
    CHECK_THROWS_WITH(MetricsWriter(io, bad, [] { return json::object(); }), Catch::Contains(bad));

    std::string fifo = dir.path + "/fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THROWS_WITH(MetricsWriter(io, fifo, [] { return json::object(); }),
                      Catch::Contains(fifo) && Catch::Contains("needs a reader"));

    MetricsWriter writer(io, dir.path + "/metrics", [] { return json::array(); });
    CHECK_THROWS_AS(writer.flush(), vmm::Error);
    CHECK(read_lines(dir.path + "/metrics").empty());
}

TEST_CASE("MetricsWriter flushes on its timer", "[metrics]") {
    TempDir dir;
    std::string path = dir.path + "/metrics";
    boost::asio::io_context io;
    MetricsWriter writer(io, path, [] { return json{{"vmm", json::object()}}; });
    writer.start_periodic(std::chrono::seconds(1));
    io.run_for(std::chrono::milliseconds(2500));
    CHECK(writer.lines_written() == 2);
    auto lines = read_lines(path);
    REQUIRE(lines.size() == 2);
    int64_t first = json::parse(lines[0])["utc_timestamp_ms"];
    int64_t second = json::parse(lines[1])["utc_timestamp_ms"];
    CHECK(second - first >= 900);

    writer.stop_periodic();
    io.restart();
    io.run_for(std::chrono::milliseconds(1200));
    CHECK(read_lines(path).size() == 2);
}

namespace {

// Reads everything the pipe holds now.
std::string drain(int reader) {
    std::string data;
    char buffer[65536];
    for (ssize_t n; (n = ::read(reader, buffer, sizeof(buffer))) > 0;) {
        data.append(buffer, static_cast<size_t>(n));
    }
    return data;
}

// Parses newline-separated JSON lines; the data must end with a newline.
int count_json_lines(const std::string& data, size_t pad) {
    if (!data.empty()) {
        REQUIRE(data.back() == '\n');
    }
    int lines = 0;
    size_t start = 0;
    for (size_t end; (end = data.find('\n', start)) != std::string::npos; start = end + 1) {
        json line = json::parse(data.substr(start, end - start));
        CHECK(line["pad"].get<std::string>().size() == pad);
        ++lines;
    }
    return lines;
}

}  // namespace

TEST_CASE("MetricsWriter drops lines to a full pipe without blocking", "[metrics]") {
    TempDir dir;
    std::string fifo = dir.path + "/fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
    REQUIRE(reader >= 0);
    REQUIRE(::fcntl(reader, F_SETPIPE_SZ, 4096) >= 0);

    boost::asio::io_context io;
    // About 1540 bytes a line: two fit in the 4 KiB pipe. Writes of at most
    // PIPE_BUF bytes are all or nothing, so the rest are dropped whole.
    MetricsWriter writer(io, fifo, [] { return json{{"pad", std::string(1500, 'p')}}; });
    for (int i = 0; i < 10; ++i) {
        writer.flush();  // a blocking write would hang here
    }
    CHECK(writer.lines_written() == 2);
    CHECK(writer.lines_dropped() == 8);
    CHECK(count_json_lines(drain(reader), 1500) == 2);
    writer.flush();
    CHECK(writer.lines_written() == 3);
    CHECK(count_json_lines(drain(reader), 1500) == 1);
    ::close(reader);
}

TEST_CASE("MetricsWriter sends lines longer than a pipe's buffer whole", "[metrics]") {
    TempDir dir;
    std::string fifo = dir.path + "/fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
    REQUIRE(reader >= 0);
    REQUIRE(::fcntl(reader, F_SETPIPE_SZ, 4096) >= 0);

    boost::asio::io_context io;
    // 6 KiB lines never fit: each goes out in parts, the rest waits.
    MetricsWriter writer(io, fifo, [] { return json{{"pad", std::string(6000, 'q')}}; });
    std::string received;
    int flushes = 0;
    for (int round = 0; round < 5; ++round) {
        for (int i = 0; i < 3; ++i, ++flushes) {
            writer.flush();
        }
        received += drain(reader);
    }
    // With room for everything, the pending tail and one more line go out.
    REQUIRE(::fcntl(reader, F_SETPIPE_SZ, 1 << 20) >= 0);
    writer.flush();
    ++flushes;
    received += drain(reader);

    CHECK(writer.lines_written() > 0);
    CHECK(writer.lines_dropped() > 0);
    CHECK(writer.lines_written() + writer.lines_dropped() == static_cast<uint64_t>(flushes));
    CHECK(count_json_lines(received, 6000) == static_cast<int>(writer.lines_written()));
    ::close(reader);
}
