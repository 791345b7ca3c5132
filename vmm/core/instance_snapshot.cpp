// Instance's snapshot requests (PUT /snapshot/create, PUT /snapshot/load):
// the files, the configuration and the lifecycle; the machine saves and
// restores its own state (machine_snapshot.cpp, restore_machine()).
#include <algorithm>

#include "vmm/base/logger.hpp"
#include "vmm/core/instance.hpp"
#include "vmm/core/snapshot_config_state.hpp"
#include "vmm/core/vm_builder.hpp"
#include "vmm/memory/memory_file.hpp"
#include "vmm/memory/uffd_memory.hpp"
#include "vmm/snapshot/snapshot_file.hpp"

namespace vmm {

namespace {

double elapsed_ms(int64_t start_ns) {
    return double(BootTrace::now_ns() - start_ns) / 1e6;
}

// network_overrides: each names an interface of the snapshot and gives it
// another host tap.
void apply_network_overrides(VmConfig& config, const std::vector<NetworkOverride>& overrides) {
    for (const NetworkOverride& override : overrides) {
        auto net = std::find_if(config.nets.begin(), config.nets.end(),
                                [&](const NetConfig& n) { return n.id == override.iface_id; });
        if (net == config.nets.end()) {
            throw Error(fmt::format("network_overrides: the snapshot has no interface '{}'",
                                    override.iface_id));
        }
        net->tap_name = override.host_dev_name;
        net->tap_fd = -1;
    }
}

}  // namespace

void Instance::create_snapshot(const SnapshotCreateParams& params) {
    if (lifecycle_.state() != VmLifecycle::State::Paused) {
        throw Error(fmt::format(
            "Cannot create a snapshot while the microVM is {}: pause it first (PATCH /vm "
            "{{\"state\": \"Paused\"}}).",
            VmLifecycle::name(lifecycle_.state())));
    }
    bool diff = params.type == SnapshotType::Diff;
    if (diff && !config_.track_dirty_pages) {
        throw Error(
            "Diff snapshots are not allowed on microVMs with dirty page tracking disabled "
            "(machine-config track_dirty_pages).");
    }
    int64_t start = BootTrace::now_ns();
    StateWriter state;
    StateWriter config;
    write_config_state(config, config_);
    state.section(config);
    machine_->save_snapshot(state);
    // Every snapshot starts a new Diff interval (the next Diff holds what
    // changed after this one, Full or Diff).
    std::optional<DirtyPages> dirty;
    if (diff && !diff_base_) {
        throw Error("The last snapshot failed: create a Full snapshot before the next Diff.");
    }
    if (config_.track_dirty_pages) {
        diff_base_ = false;  // until this snapshot is written whole
        dirty = machine_->take_dirty_pages();
    }
    MemoryFileStats memory =
        diff ? save_memory_diff(machine_->memory(), *dirty, params.mem_file_path)
             : save_memory_file(machine_->memory(), params.mem_file_path);
    write_snapshot_file(params.snapshot_path, state.data());
    diff_base_ = true;
    log_info(
        "{} snapshot created in {:.1f} ms: state {} bytes in '{}', memory {} MiB in '{}' ({} "
        "KiB written)",
        diff ? "Diff" : "Full", elapsed_ms(start), state.data().size(), params.snapshot_path,
        memory.file_bytes >> 20, params.mem_file_path, memory.written_bytes >> 10);
}

void Instance::load_snapshot(const SnapshotLoadParams& params) {
    if (lifecycle_.state() != VmLifecycle::State::NotStarted) {
        throw Error("Loading a microVM snapshot is not allowed after the microVM started.");
    }
    if (configured_) {
        throw Error(
            "Loading a microVM snapshot not allowed after configuring boot-specific resources.");
    }
    int64_t start = BootTrace::now_ns();
    std::vector<uint8_t> bytes = read_snapshot_file(params.snapshot_path);
    StateReader state(bytes, fmt::format("snapshot '{}'", params.snapshot_path));
    StateReader config_reader = state.section("snapshot configuration");
    VmConfig config = read_config_state(config_reader);
    // How this process reaches KVM and reports is its own, not the snapshot's.
    config.kvm_device = config_.kvm_device;
    config.verbose = config_.verbose;
    config.boot_trace = config_.boot_trace;
    config.track_dirty_pages = params.track_dirty_pages;
    apply_network_overrides(config, params.network_overrides);
    validate_config(config);
    MachineInputs inputs(config, false);

    // The machine keeps a reference to config_: it becomes the snapshot's,
    // and goes back to what it was if the restore fails.
    VmConfig previous = std::exchange(config_, std::move(config));
    std::unique_ptr<Machine> machine;
    try {
        machine = restore_machine(
            config_, std::move(inputs), std::move(empty_vm_), trace_, loop_, state,
            [&params](const std::vector<GuestRegionSpec>& regions) {
                return params.backend == MemoryBackendType::Uffd
                           ? load_uffd_memory(regions, params.backend_path)
                           : load_memory_file(regions, params.backend_path);
            },
            params.resume_vm);
    } catch (...) {
        config_ = std::move(previous);
        throw;
    }
    machine->start(seccomp_.get());
    machine_ = std::move(machine);
    lifecycle_.restored("snapshot load", params.resume_vm);
    log_info("snapshot '{}' loaded in {:.2f} ms ({} vCPU(s), {} MiB){}", params.snapshot_path,
             elapsed_ms(start), config_.vcpu_count, config_.memory_mib,
             params.resume_vm ? ", running" : ", paused");
}

}  // namespace vmm
