// Where things are: the repository root (the `toro` wrapper exports TORO_ROOT after
// changing into it), the user's own working directory (TORO_CWD, for relative paths on
// the command line), and the kernel build folder.

import Foundation

public struct Paths: Sendable {
    /// The repository root (holds Package.swift, Kernel/, Compat/).
    public var root: String

    public init(root: String) { self.root = root }

    /// From the environment, falling back to the current directory.
    public static func fromEnvironment() -> Paths {
        let env = ProcessInfo.processInfo.environment
        return Paths(root: env["TORO_ROOT"] ?? FileManager.default.currentDirectoryPath)
    }

    /// The directory relative paths on the command line are resolved against.
    public static func userDirectory() -> String {
        ProcessInfo.processInfo.environment["TORO_CWD"] ?? FileManager.default.currentDirectoryPath
    }

    /// SwiftPM's scratch path for the kernel builds; the images are linked here too.
    public var kernelBuild: String { root + "/.build-kernel" }
    /// Where `service`'s images are linked.
    public func imageFolder(_ service: String) -> String { kernelBuild + "/images/" + service }
    public func image(_ platform: GuestPlatform, service: String) -> String {
        imageFolder(service) + "/" + platform.imageName
    }
    public func nullImage(_ platform: GuestPlatform) -> String { kernelBuild + "/" + platform.nullImageName }
    /// The folder holding `service`'s module (Sources/Services/<Kind>/<name>).
    public func serviceFolder(_ service: ServiceInfo) -> String {
        root + "/Sources/Services/" + service.kind.rawValue + "/" + service.name
    }
    public var kernelSources: String { root + "/Kernel" }
    public var compat: String { root + "/Compat" }
}
