// Firecracker-style metrics: one JSON object per line, written to a file or a
// named pipe on FlushMetrics and every period, without ever blocking the I/O
// thread.
//
// A line that finds the pipe full is dropped and counted. A pipe takes writes
// of at most PIPE_BUF bytes whole; a longer line may go out in part, and then
// its tail is kept and sent first on the next flush (the line after it is
// dropped if the tail still does not fit), so the reader only ever sees whole
// lines.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "vmm/base/unique_fd.hpp"

namespace vmm {

class MetricsWriter {
  public:
    // Opens `path` (O_APPEND | O_CREAT | O_NONBLOCK, mode 0600; a named pipe
    // must have a reader) and throws Error naming it if that fails. `collect`
    // returns a JSON object; "utc_timestamp_ms" is added to it.
    MetricsWriter(boost::asio::io_context& io, std::string path,
                  std::function<nlohmann::json()> collect);
    MetricsWriter(const MetricsWriter&) = delete;
    MetricsWriter& operator=(const MetricsWriter&) = delete;

    // Flushes every `period` on the io_context's thread; a failing flush is
    // logged, the timer goes on.
    void start_periodic(std::chrono::seconds period = std::chrono::seconds(60));
    void stop_periodic();

    // Writes one line now. Exceptions from `collect` propagate.
    void flush();

    uint64_t lines_written() const { return written_; }
    uint64_t lines_dropped() const { return dropped_; }
    const std::string& path() const { return path_; }

  private:
    void arm_timer();
    // Writes what it can of `data` without blocking; returns the bytes written.
    size_t write_some(std::string_view data);

    std::string path_;
    std::function<nlohmann::json()> collect_;
    UniqueFd fd_;
    boost::asio::steady_timer timer_;
    std::chrono::seconds period_{60};
    bool periodic_ = false;
    std::string pending_;               // tail of a line a pipe took only in part
    std::atomic<uint64_t> written_{0};  // read from any thread
    std::atomic<uint64_t> dropped_{0};
};

}  // namespace vmm
