// AsyncWriter: the guest's console output reaches the fd in order through a
// thread of its own; a reader that stalls never makes write() or close()
// wait, and what could not go out is counted.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "test_helpers.hpp"
#include "vmm/base/async_writer.hpp"

using test::Bytes;
using vmm::AsyncWriter;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// A pipe; its read end is read only when the test says so.
struct Pipe {
    Pipe() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        read_fd = fds[0];
        write_fd = fds[1];
    }
    ~Pipe() {
        ::close(read_fd);
        ::close(write_fd);
    }
    // Reads until `count` bytes came or 5 s passed.
    Bytes read(size_t count) const {
        Bytes out;
        auto until = Clock::now() + 5s;
        uint8_t chunk[65536];
        ::fcntl(read_fd, F_SETFL, O_NONBLOCK);
        while (out.size() < count && Clock::now() < until) {
            ssize_t n = ::read(read_fd, chunk, sizeof(chunk));
            if (n > 0) {
                out.insert(out.end(), chunk, chunk + n);
            } else {
                std::this_thread::sleep_for(1ms);
            }
        }
        return out;
    }
    int read_fd;
    int write_fd;
};

}  // namespace

TEST_CASE("AsyncWriter writes everything in order, and close() drains", "[async_writer]") {
    Pipe pipe;
    Bytes expected;
    {
        AsyncWriter writer(pipe.write_fd, "test");
        for (int i = 0; i < 1000; ++i) {
            Bytes line = test::pattern(37, uint8_t(i));
            REQUIRE(writer.write(line) == line.size());
            expected.insert(expected.end(), line.begin(), line.end());
        }
        CHECK(pipe.read(expected.size()) == expected);
        writer.close();
        CHECK(writer.bytes_written() == expected.size());
        CHECK(writer.bytes_lost() == 0);
        CHECK(writer.write(expected) == 0);  // closed
    }
}

// The pipe holds 64 KiB and nobody reads it: the rest waits in the queue,
// what does not fit is refused at once, and close() does not wait on the
// reader for more than its drain time.
TEST_CASE("AsyncWriter never waits on a reader that stalls", "[async_writer]") {
    Pipe pipe;
    AsyncWriter writer(pipe.write_fd, "test", 256 << 10);
    Bytes chunk(4096, 'x');
    size_t taken = 0;
    auto start = Clock::now();
    for (int i = 0; i < 1000; ++i) {  // 4 MB
        taken += writer.write(chunk);
    }
    CHECK(Clock::now() - start < 1s);
    // At most the queue and the pipe's 64 KiB (and a little: the thread may
    // have taken a batch from the queue that the pipe holds part of).
    CHECK(taken >= 256 << 10);
    CHECK(taken <= (256 << 10) + (64 << 10) + 4096);
    start = Clock::now();
    writer.close(100ms);
    auto took = Clock::now() - start;
    CHECK(took >= 100ms);
    CHECK(took < 1s);
    CHECK(writer.bytes_lost() > 0);
    CHECK(writer.bytes_written() + writer.bytes_lost() == taken);
}

TEST_CASE("AsyncWriter drops everything after a write error", "[async_writer]") {
    int read_only = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(read_only >= 0);
    {
        AsyncWriter writer(read_only, "test");  // write() fails with EBADF
        Bytes bytes(10, 'a');
        CHECK(writer.write(bytes) == 10);
        auto until = Clock::now() + 5s;
        while (!writer.failed() && Clock::now() < until) {
            std::this_thread::sleep_for(1ms);
        }
        CHECK(writer.failed());
        CHECK(writer.write(bytes) == 0);
        writer.close();
        CHECK(writer.bytes_lost() == 10);
        CHECK(writer.bytes_written() == 0);
    }
    ::close(read_only);
}

// Bytes handed over one at a time (a serial port's) wait for the gather
// time and then go out together; close() writes what is gathering at once
// instead of waiting that time out.
TEST_CASE("AsyncWriter gathers bytes into one write, and close() does not wait for more",
          "[async_writer]") {
    Pipe pipe;
    AsyncWriter writer(pipe.write_fd, "test", AsyncWriter::kDefaultCapacity, 20s);
    const Bytes first{'a'}, rest{'b', 'c'};
    REQUIRE(writer.write(first) == 1);
    std::this_thread::sleep_for(20ms);  // the thread is gathering by now
    REQUIRE(writer.write(rest) == 2);
    std::this_thread::sleep_for(100ms);
    CHECK(writer.bytes_written() == 0);  // still gathering
    auto before = Clock::now();
    writer.close();
    CHECK(Clock::now() - before < 10s);
    CHECK(pipe.read(3) == Bytes{'a', 'b', 'c'});
    CHECK(writer.bytes_written() == 3);
}

// A burst over the gather limit is written without waiting for the time.
TEST_CASE("AsyncWriter writes at once when the gather limit is queued", "[async_writer]") {
    Pipe pipe;
    AsyncWriter writer(pipe.write_fd, "test", AsyncWriter::kDefaultCapacity, 20s);
    Bytes burst = test::pattern(AsyncWriter::kGatherLimit, 7);
    REQUIRE(writer.write(Bytes{'x'}) == 1);
    std::this_thread::sleep_for(20ms);
    REQUIRE(writer.write(burst) == burst.size());
    Bytes expected{'x'};
    expected.insert(expected.end(), burst.begin(), burst.end());
    CHECK(pipe.read(expected.size()) == expected);  // within read()'s 5 s, not 20
    writer.close();
}
