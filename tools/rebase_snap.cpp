// rebase-snap: merges a Diff snapshot's memory file onto the memory file of
// the snapshot it follows, as Firecracker's tool of that name does. A Diff
// memory file holds the pages written since that snapshot and holes
// elsewhere (vmm/memory/memory_file.hpp), so copying its data ranges
// (SEEK_DATA/SEEK_HOLE) over the base at the same offsets gives the memory
// file a Full snapshot would have had. The result goes with the Diff's state
// file.
//
//   rebase-snap --base-file BASE --diff-file DIFF
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <vector>

#include "vmm/base/error.hpp"
#include "vmm/base/input_file.hpp"
#include "vmm/base/unique_fd.hpp"

namespace {

using vmm::Error;

// Copies [offset, offset + length) from `in` to `out` at the same offset.
void copy_range(int in, int out, off_t offset, off_t length, const std::string& diff) {
    std::vector<char> buffer(1 << 20);
    while (length > 0) {
        size_t want = size_t(std::min<off_t>(length, off_t(buffer.size())));
        ssize_t got = ::pread(in, buffer.data(), want, offset);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            vmm::throw_errno(fmt::format("reading '{}'", diff));
        }
        for (ssize_t done = 0; done < got;) {
            ssize_t put = ::pwrite(out, buffer.data() + done, size_t(got - done), offset + done);
            if (put < 0 && errno == EINTR) {
                continue;
            }
            if (put <= 0) {
                vmm::throw_errno("writing the base file");
            }
            done += put;
        }
        offset += got;
        length -= got;
    }
}

uint64_t rebase(const std::string& base_path, const std::string& diff_path) {
    vmm::InputFile diff = vmm::open_input_file(diff_path, O_RDONLY, "diff file");
    int raw = ::open(base_path.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (raw < 0) {
        vmm::throw_errno(fmt::format("cannot open base file '{}'", base_path));
    }
    vmm::UniqueFd base(raw);
    struct stat base_info {};
    if (::fstat(base.get(), &base_info) != 0) {
        vmm::throw_errno(fmt::format("base file '{}'", base_path));
    }
    if (base_info.st_size != diff.info.st_size) {
        throw Error(fmt::format(
            "base file '{}' is {} bytes and diff file '{}' {}: they are not of the same VM",
            base_path, base_info.st_size, diff_path, diff.info.st_size));
    }
    uint64_t copied = 0;
    off_t at = 0, end = diff.info.st_size;
    while (at < end) {
        off_t data = ::lseek(diff.fd.get(), at, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO) {
                break;  // only a hole is left
            }
            vmm::throw_errno(fmt::format("SEEK_DATA in '{}'", diff_path));
        }
        off_t hole = ::lseek(diff.fd.get(), data, SEEK_HOLE);
        if (hole < 0) {
            vmm::throw_errno(fmt::format("SEEK_HOLE in '{}'", diff_path));
        }
        copy_range(diff.fd.get(), base.get(), data, hole - data, diff_path);
        copied += uint64_t(hole - data);
        at = hole;
    }
    if (::fsync(base.get()) != 0) {
        vmm::throw_errno(fmt::format("syncing '{}'", base_path));
    }
    return copied;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Merges a Diff snapshot's memory file onto its base memory file."};
    std::string base, diff;
    app.add_option("--base-file", base, "the memory file of the snapshot before the Diff")
        ->required();
    app.add_option("--diff-file", diff, "the Diff snapshot's memory file")->required();
    CLI11_PARSE(app, argc, argv);
    try {
        uint64_t copied = rebase(base, diff);
        std::printf("rebase-snap: %llu KiB of '%s' merged onto '%s'\n",
                    static_cast<unsigned long long>(copied >> 10), diff.c_str(), base.c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rebase-snap: %s\n", e.what());
        return 1;
    }
}
