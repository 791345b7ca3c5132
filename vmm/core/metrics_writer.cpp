#include "vmm/core/metrics_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vmm/base/error.hpp"
#include "vmm/base/logger.hpp"

namespace vmm {

MetricsWriter::MetricsWriter(boost::asio::io_context& io, std::string path,
                             std::function<nlohmann::json()> collect)
    : path_(std::move(path)), collect_(std::move(collect)), timer_(io) {
    fd_.reset(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600));
    if (!fd_.valid()) {
        int error = errno;
        throw Error(fmt::format("cannot open metrics file '{}': {}{}", path_, std::strerror(error),
                                error == ENXIO ? " (a named pipe needs a reader)" : ""));
    }
}

void MetricsWriter::start_periodic(std::chrono::seconds period) {
    period_ = period;
    periodic_ = true;
    arm_timer();
}

void MetricsWriter::stop_periodic() {
    periodic_ = false;
    timer_.cancel();
}

void MetricsWriter::arm_timer() {
    timer_.expires_after(period_);
    timer_.async_wait([this](const boost::system::error_code& error) {
        // Checked first: after the writer is destroyed the handler still runs,
        // with operation_aborted, and must not touch `this`.
        if (error || !periodic_) {
            return;
        }
        try {
            flush();
        } catch (const std::exception& e) {
            log_error("metrics: cannot collect metrics for '{}': {}", path_, e.what());
        }
        arm_timer();
    });
}

size_t MetricsWriter::write_some(std::string_view data) {
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd_.get(), data.data() + done, data.size() - done);
        if (n > 0) {
            done += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            break;  // EAGAIN: the pipe is full; EPIPE: no reader (SIGPIPE is ignored)
        }
    }
    return done;
}

void MetricsWriter::flush() {
    nlohmann::json metrics = collect_();
    if (!metrics.is_object()) {
        throw Error("metrics: the collected metrics are not a JSON object");
    }
    auto now = std::chrono::system_clock::now().time_since_epoch();
    metrics["utc_timestamp_ms"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
    std::string line = metrics.dump();
    line += '\n';

    if (!pending_.empty()) {
        pending_.erase(0, write_some(pending_));
        if (!pending_.empty()) {
            ++dropped_;  // the reader is still behind: this line goes
            return;
        }
        ++written_;  // the earlier line is now complete
    }
    size_t done = write_some(line);
    if (done == line.size()) {
        ++written_;
    } else if (done == 0) {
        ++dropped_;
    } else {
        pending_ = line.substr(done);
    }
}

}  // namespace vmm
