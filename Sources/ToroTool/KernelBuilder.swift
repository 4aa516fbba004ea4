// Builds the kernel images (`toro build`, and before every run).
//
// Recipe (DESIGN.md, "Facts about the toolchain"):
//   1. swift build -c release --triple x86_64-unknown-none-elf --toolset Kernel/toolset.json
//        --product ToroImages --scratch-path .build-kernel --experimental-lto-mode=full
//        (every module, as LLVM bitcode; incremental)
//   2. Kernel/kernel.ld.in with ENTRY_SYMBOL replaced -> .build-kernel/<platform>.ld
//   3. ld.lld --gc-sections --icf=all -T <platform>.ld -o .build-kernel/images/<service>/toro-<platform>.debug.elf
//        <the platform's modules' objects> <the service's and the service libraries' objects>
//        <toolchain>/usr/lib/swift/embedded/x86_64-unknown-none-elf/libswiftUnicodeDataTables.a
//      (ImageLinker.swift picks the objects: one platform, one service, nothing else)
//   4. llvm-objcopy --strip-all: the boot image .build-kernel/images/<service>/toro-<platform>.elf
// The link is skipped when the image is newer than its inputs. The do-nothing kernels
// for `bench boot` are one assembly file each, assembled with clang and linked the same way.
//
// Setting TORO_NO_BUILD=1 skips building and uses the images already there (the boot
// tests set it after `toro test` has built both kernels once).

#if canImport(Glibc)
import Glibc
#endif
import Foundation

public struct KernelBuilder: Sendable {
    public var paths: Paths
    /// False builds even under TORO_NO_BUILD=1 (the boot test of `toro new` builds the
    /// service it has just created).
    public var honoursNoBuild = true

    public init(paths: Paths) { self.paths = paths }

    static let triple = "x86_64-unknown-none-elf"

    /// The toolchain's `usr` folder, found from `swift` on PATH (symlinks resolved).
    static func toolchainUsr() throws(ToolFailure) -> String {
        guard let swift = Installer.which("swift") else {
            throw ToolFailure(.missingTool, "swift is not on PATH; install the Swift 6.3 toolchain")
        }
        let resolved = URL(fileURLWithPath: swift).resolvingSymlinksInPath()
        return resolved.deletingLastPathComponent().deletingLastPathComponent().path
    }

    public static var skipBuild: Bool { ProcessInfo.processInfo.environment["TORO_NO_BUILD"] == "1" }

    nonisolated(unsafe) static var compiled = false

    /// Compiles every module an image can be made of (both platforms, every service) in one
    /// incremental `swift build`; once per run of the tool.
    public func compile() throws(ToolFailure) {
        if KernelBuilder.compiled { return }
        Console.progress("building the kernels and services…")
        try step(["swift", "build", "-c", "release", "--triple", KernelBuilder.triple,
                  "--toolset", "Kernel/toolset.json", "--product", "ToroImages",
                  // Each module's Swift and C become LLVM bitcode; ld.lld optimises the image
                  // as one program (ImageLinker.swift says what that buys).
                  "--experimental-lto-mode=full",
                  "--scratch-path", ".build-kernel",
                  // Package.swift finds the services by listing folders: a new folder must be
                  // seen although the manifest's text did not change.
                  "--manifest-cache", "none", "--disable-build-manifest-caching"],
                 what: "swift build of the kernel modules")
        KernelBuilder.compiled = true
    }

    /// Builds the image of `service` on `platform` (the kernel linked with that service
    /// alone) and returns its path.
    @discardableResult
    public func build(_ platform: GuestPlatform, service: String) throws(ToolFailure) -> String {
        let image = paths.image(platform, service: service)
        if KernelBuilder.skipBuild && honoursNoBuild {
            guard FileManager.default.fileExists(atPath: image) else {
                throw ToolFailure(.buildFailed, "TORO_NO_BUILD is set but \(image) does not exist; run ./toro build --service \(service)")
            }
            return image
        }
        guard let info = Services.named(service) else {
            throw ToolFailure(.badArgument, "unknown service '\(service)'; see ./toro services")
        }
        try compile()
        let usr = try KernelBuilder.toolchainUsr()
        try? FileManager.default.createDirectory(atPath: paths.imageFolder(service), withIntermediateDirectories: true)
        let script = try linkerScript(platform, name: "\(platform.rawValue).ld")
        let objects = try ImageLinker(paths: paths).objects(platform: platform, service: info)
            + [try driverTable(platform, service: info, usr: usr)]
        let unicode = "\(usr)/lib/swift/embedded/\(KernelBuilder.triple)/libswiftUnicodeDataTables.a"
        // The boot image carries no symbols or debug info (it is what QEMU loads and what
        // `bench boot` sizes); the unstripped twin beside it symbolises backtraces
        // (`llvm-symbolizer -e .build-kernel/images/<service>/toro-<platform>.debug.elf <address>`).
        let debugImage = image.replacingOccurrences(of: ".elf", with: ".debug.elf")
        if isStale(debugImage, inputs: objects + [script, unicode]) {
            try step(["\(usr)/bin/ld.lld", "--gc-sections", "--icf=all", "-T", script, "-o", debugImage] + objects + [unicode],
                     what: "linking \(service) for \(platform.rawValue)")
        }
        if isStale(image, inputs: [debugImage]) {
            try step(["\(usr)/bin/llvm-objcopy", "--strip-all", debugImage, image],
                     what: "stripping \(service) for \(platform.rawValue)")
        }
        return image
    }

    /// Writes (when changed) and compiles the image's driver table; returns its object.
    func driverTable(_ platform: GuestPlatform, service: ServiceInfo, usr: String) throws(ToolFailure) -> String {
        let source = "\(paths.imageFolder(service.name))/drivers-\(platform.rawValue).c"
        let object = source.replacingOccurrences(of: ".c", with: ".o")
        let text = ImageLinker.driverTable(platform: platform, service: service)
        if (try? String(contentsOfFile: source, encoding: .utf8)) != text {
            do { try text.write(toFile: source, atomically: true, encoding: .utf8) } catch {
                throw ToolFailure(.buildFailed, "cannot write \(source): \(error)")
            }
        }
        if isStale(object, inputs: [source]) {
            try step(["\(usr)/bin/clang", "-c", "--target=\(KernelBuilder.triple)", "-ffreestanding", "-fno-builtin",
                      "-mno-red-zone", "-fdata-sections", source, "-o", object], what: "compiling \(service.name)'s driver table")
        }
        return object
    }

    /// Builds the do-nothing kernel for `platform` and returns its image's path.
    @discardableResult
    public func buildNull(_ platform: GuestPlatform) throws(ToolFailure) -> String {
        let image = paths.nullImage(platform)
        let source = "\(paths.kernelSources)/\(platform.nullKernelSource)"
        let object = image.replacingOccurrences(of: ".elf", with: ".o")
        let usr = try KernelBuilder.toolchainUsr()
        try? FileManager.default.createDirectory(atPath: paths.kernelBuild, withIntermediateDirectories: true)
        let script = try linkerScript(platform, name: platform.nullImageName.replacingOccurrences(of: ".elf", with: ".ld"))
        if isStale(object, inputs: [source]) {
            try step(["\(usr)/bin/clang", "-c", "--target=\(KernelBuilder.triple)", source, "-o", object],
                     what: "assembling \(platform.nullKernelSource)")
        }
        if isStale(image, inputs: [object, script]) {
            try step(["\(usr)/bin/ld.lld", "--gc-sections", "-T", script, "-o", image, object],
                     what: "linking \(platform.nullImageName)")
        }
        return image
    }

    /// Writes Kernel/kernel.ld.in with the platform's entry symbol, only when it changed
    /// (so an unchanged script does not force a relink).
    func linkerScript(_ platform: GuestPlatform, name: String) throws(ToolFailure) -> String {
        let template = "\(paths.kernelSources)/kernel.ld.in"
        guard let text = try? String(contentsOfFile: template, encoding: .utf8) else {
            throw ToolFailure(.buildFailed, "cannot read \(template)")
        }
        let script = text.replacingOccurrences(of: "ENTRY_SYMBOL", with: platform.entrySymbol)
        let path = "\(paths.kernelBuild)/\(name)"
        if (try? String(contentsOfFile: path, encoding: .utf8)) != script {
            do { try script.write(toFile: path, atomically: true, encoding: .utf8) } catch {
                throw ToolFailure(.buildFailed, "cannot write \(path): \(error)")
            }
        }
        return path
    }

    /// Runs one build step from the repository root; its output is shown only on failure.
    func step(_ arguments: [String], what: String) throws(ToolFailure) {
        var process = Subprocess(arguments)
        process.directory = paths.root
        process.mergeStderr = true
        let result = process.run()
        guard result.exitCode == 0 else {
            Console.errorLine(result.output.trimmingCharacters(in: .newlines))
            if case .failedToStart(let why) = result.termination {
                throw ToolFailure(.buildFailed, "\(what) failed to start: \(why)")
            }
            throw ToolFailure(.buildFailed, "\(what) failed (output above)")
        }
    }

    /// Whether `output` is missing or older than any of `inputs`.
    func isStale(_ output: String, inputs: [String]) -> Bool {
        guard let built = modificationTime(output) else { return true }
        return inputs.contains { (modificationTime($0) ?? .infinity) > built }
    }

    func modificationTime(_ path: String) -> Double? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
    }
}
