// Which QEMU accelerator a run uses.
//
// `/dev/kvm` on the project's machines is often kvm-pvm, a software hypervisor on which
// guest SSE/x87 instructions fail ("emulation failure") and loops run ~100x slower than
// TCG (see DESIGN.md, "Accelerator"). So `auto` picks TCG whenever the host's KVM is PVM
// (/sys/module/kvm_pvm exists) or /dev/kvm is absent or cannot be opened, and KVM with
// `-cpu host` only on a hardware-virtualised host. `kvm` on a PVM host is refused.

#if canImport(Glibc)
import Glibc
#endif

public enum Accelerator: String, Equatable, Sendable {
    case tcg, kvm

    /// QEMU's arguments for this accelerator.
    public var qemuArguments: [String] {
        switch self {
        case .tcg: ["-accel", "tcg"]
        case .kvm: ["-accel", "kvm", "-cpu", "host"]
        }
    }
}

/// What the host offers, probed once; tests build their own.
public struct HostFacts: Equatable, Sendable {
    /// The KVM module is kvm-pvm (a software hypervisor).
    public var kvmIsPVM: Bool
    /// /dev/kvm exists and opens read-write.
    public var kvmUsable: Bool

    public init(kvmIsPVM: Bool, kvmUsable: Bool) {
        self.kvmIsPVM = kvmIsPVM
        self.kvmUsable = kvmUsable
    }

    public static func probe() -> HostFacts {
        let pvm = access("/sys/module/kvm_pvm", F_OK) == 0
        let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        if fd >= 0 { close(fd) }
        return HostFacts(kvmIsPVM: pvm, kvmUsable: fd >= 0)
    }
}

extension AccelChoice {
    /// The accelerator to use on `host`, or a one-line refusal (status 64).
    public func resolve(on host: HostFacts) throws(ToolFailure) -> Accelerator {
        switch self {
        case .tcg:
            return .tcg
        case .auto:
            return host.kvmIsPVM || !host.kvmUsable ? .tcg : .kvm
        case .kvm:
            if host.kvmIsPVM {
                throw ToolFailure(.badArgument,
                                  "--accel kvm: this host's KVM is kvm-pvm, a software hypervisor on which guest SSE instructions fail; use --accel tcg (or auto)")
            }
            if !host.kvmUsable {
                throw ToolFailure(.badArgument, "--accel kvm: /dev/kvm is missing or cannot be opened; use --accel tcg (or auto)")
            }
            return .kvm
        }
    }
}
