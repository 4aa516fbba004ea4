// Which object files make an image: the platform's kernel modules and one service with the
// service libraries, out of the one `swift build` of every module (KernelBuilder.compile).
// `ld.lld --gc-sections` then keeps only what the entry point reaches, so a library the
// service does not call costs nothing; another service's module is never on the line.
//
// Swift modules: the files SwiftPM's output-file-map.json lists (the build folder may
// still hold files of sources since deleted). C and assembly targets: one object per
// source file of Sources/<target>.
//
// Link-time optimisation: the modules are compiled to LLVM bitcode (SwiftPM's
// `--experimental-lto-mode=full`: "llvm-bc" in the map; C sources too, assembly stays
// machine code) and ld.lld optimises the image as one program. Compiled one module at a
// time, a library function a service calls with constants stays whole and generic code
// is specialised once per module; across the image, calls are inlined and specialised
// where they are used and what is left unreached goes. With `--icf=all` (identical
// functions folded: specialisations that compile to the same code), static-web's microvm
// image went from 195,472 to 158,704 bytes (-19%) and hello's from 87,920 to 69,816 (-21%).

import Foundation

public struct ImageLinker: Sendable {
    public var paths: Paths

    public init(paths: Paths) { self.paths = paths }

    /// The modules every image of `platform` links, bottom up.
    public static func kernelModules(_ platform: GuestPlatform) -> [String] {
        let shared = ["X86Asm", "VirtIO", "Wire", "Core", "PC"]
        switch platform {
        case .microvm: return shared + ["Drivers", "VsockDriver", "FSDriver", "MicroVMBoot", "VirtIOMMIO", "MicroVM", "MicroVMScan", "MicroVMVsock", "MicroVMFS"]
        case .legacy: return shared + ["LegacyBoot", "VirtIOPCI", "Drivers", "BlkDriver", "NetDriver", "Inet", "Legacy", "LegacyScan", "LegacyBlk", "LegacyNet"]
        }
    }

    /// The service libraries (every folder of Sources/Services/Libraries).
    public func libraryModules() -> [String] {
        let folder = paths.root + "/Sources/Services/Libraries"
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    public func objects(platform: GuestPlatform, service: ServiceInfo) throws(ToolFailure) -> [String] {
        var result: [String] = []
        for module in ImageLinker.kernelModules(platform) + libraryModules() + [service.module] {
            result += try objects(module: module)
        }
        return result
    }

    /// The C source of the image's driver table: each hook the kernel's devices code reads
    /// (X86Asm/include/arch.h) points at the platform's attach function when the service
    /// uses that kind of device, and is null otherwise, so unused drivers are never linked.
    public static func driverTable(platform: GuestPlatform, service: ServiceInfo) -> String {
        var text = "// The driver table of \(service.name) on \(platform.rawValue), written by ./toro build.\n#include <stdbool.h>\n"
        if !service.devices.isEmpty, let scan = platform.scanSymbol {
            text += "bool \(scan)(void *);\nbool (*const toro_driver_scan)(void *) = \(scan);\n"
        } else {
            text += "bool (*const toro_driver_scan)(void *) = 0;\n"
        }
        for device in Services.deviceKinds {
            if service.devices.contains(device), let symbol = platform.attachSymbol(device) {
                text += "bool \(symbol)(void *);\nbool (*const toro_driver_\(device))(void *) = \(symbol);\n"
            } else {
                text += "bool (*const toro_driver_\(device))(void *) = 0;\n"
            }
        }
        return text
    }

    func objects(module: String) throws(ToolFailure) -> [String] {
        let build = "\(paths.kernelBuild)/release/\(module).build"
        let map = build + "/output-file-map.json"
        if let data = FileManager.default.contents(atPath: map) {
            guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ToolFailure(.buildFailed, "cannot read \(map)")
            }
            return json.compactMap { source, entry in
                guard !source.isEmpty, let files = entry as? [String: Any] else { return nil }
                return (files["llvm-bc"] ?? files["object"]) as? String
            }.sorted()
        }
        let sources = paths.root + "/Sources/" + module
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: sources)) ?? [])
            .filter { $0.hasSuffix(".c") || $0.hasSuffix(".S") }.sorted()
        guard !files.isEmpty else {
            throw ToolFailure(.buildFailed, "no objects for module \(module) in \(build); run ./toro build again")
        }
        return files.map { "\(build)/\($0).o" }
    }
}
