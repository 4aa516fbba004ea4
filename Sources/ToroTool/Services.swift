// The services an image can be built with, found where Package.swift finds them: every
// folder under Sources/Services/Applications and Sources/Services/Probes. Each folder's
// Swift file declares its service (Core/Service.swift):
//
//     @_silgen_name("toro_service")
//     public func service() -> Service {
//         Service(name: "greeter", summary: "says hello", devices: [.sockets]) { context in ... }
//     }
//
// `name:`, `summary:` and `devices:` are read from that declaration, so the kernel (which
// runs the same `Service` value) and the tool share one list with nothing to keep in step.
// A folder whose file does not declare a service, or whose name differs from the folder's,
// is an error the listing reports (and a host test checks every folder).

import Foundation

public struct ServiceInfo: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case application = "Applications"
        case probe = "Probes"
    }

    public var name: String
    public var summary: String
    public var kind: Kind
    /// The device kinds the service uses (`sockets`, `files`): their drivers are linked.
    public var devices: [String]

    /// The Swift module SwiftPM makes of the folder (its c99 name: `static-web` -> `static_web`).
    public var module: String { Services.moduleName(name) }
}

public enum Services {
    /// The device kinds a service may name (Core's `ServiceDevices`).
    public static let deviceKinds = ["sockets", "files"]

    nonisolated(unsafe) private static var cached: (root: String, services: [ServiceInfo])?

    /// Every service of the repository at TORO_ROOT (or the current directory), sorted by kind
    /// then name. Folders that do not parse are left out (`catalog` reports them).
    public static var all: [ServiceInfo] {
        let root = Paths.fromEnvironment().root
        if let cached, cached.root == root { return cached.services }
        let services = catalog(root: root).compactMap { try? $0.get() }
        cached = (root, services)
        return services
    }

    public static func named(_ name: String) -> ServiceInfo? { all.first { $0.name == name } }

    /// Forgets the list read so far (after a service folder was added or removed).
    public static func reload() { cached = nil }

    /// One entry per service folder: its declaration, or why it could not be read.
    public static func catalog(root: String) -> [Result<ServiceInfo, ToolFailure>] {
        var result: [Result<ServiceInfo, ToolFailure>] = []
        for kind in ServiceInfo.Kind.allCases {
            let folder = "\(root)/Sources/Services/\(kind.rawValue)"
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
            for name in names where !name.hasPrefix(".") {
                var isFolder: ObjCBool = false
                guard FileManager.default.fileExists(atPath: "\(folder)/\(name)", isDirectory: &isFolder),
                      isFolder.boolValue else { continue }
                result.append(Result { () throws(ToolFailure) in try read(folder: "\(folder)/\(name)", kind: kind) })
            }
        }
        return result
    }

    /// Reads the service declared in `folder`'s Swift files.
    static func read(folder: String, kind: ServiceInfo.Kind) throws(ToolFailure) -> ServiceInfo {
        let folderName = (folder as NSString).lastPathComponent
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".swift") }.sorted()
        for file in files {
            guard let text = try? String(contentsOfFile: "\(folder)/\(file)", encoding: .utf8),
                  text.contains("@_silgen_name(\"toro_service\")") else { continue }
            let info = try parse(text, kind: kind, file: "\(folder)/\(file)")
            guard info.name == folderName else {
                throw ToolFailure(.badArgument, "\(folder)/\(file): the service is named '\(info.name)' but its folder is '\(folderName)'")
            }
            return info
        }
        throw ToolFailure(.badArgument, "\(folder): no Swift file declares @_silgen_name(\"toro_service\") (see ./toro new)")
    }

    /// Parses a service declaration's `name:`, `summary:` and `devices:` arguments.
    public static func parse(_ text: String, kind: ServiceInfo.Kind, file: String) throws(ToolFailure) -> ServiceInfo {
        guard let name = stringArgument("name", in: text), isValidName(name) else {
            throw ToolFailure(.badArgument, "\(file): Service(name: \"…\") is missing or not a valid name (lowercase letters, digits, '-')")
        }
        guard let summary = stringArgument("summary", in: text), !summary.isEmpty else {
            throw ToolFailure(.badArgument, "\(file): Service(summary: \"…\") is missing")
        }
        var devices: [String] = []
        if let range = text.range(of: "devices:") {
            let rest = text[range.upperBound...].drop { $0 == " " || $0 == "\n" }
            guard rest.first == "[", let close = rest.firstIndex(of: "]") else {
                throw ToolFailure(.badArgument, "\(file): devices: must be a list such as [.sockets, .files]")
            }
            for item in rest[rest.index(after: rest.startIndex)..<close].split(separator: ",") {
                let word = item.trimmingCharacters(in: .whitespacesAndNewlines).drop { $0 == "." }
                guard deviceKinds.contains(String(word)) else {
                    throw ToolFailure(.badArgument, "\(file): unknown device kind '\(word)' (known: \(deviceKinds.joined(separator: ", ")))")
                }
                devices.append(String(word))
            }
        }
        return ServiceInfo(name: name, summary: summary, kind: kind, devices: devices)
    }

    /// The first `label: "…"` string literal in `text` (no escapes needed in practice).
    static func stringArgument(_ label: String, in text: String) -> String? {
        guard let start = text.range(of: "\(label): \"") else { return nil }
        guard let end = text[start.upperBound...].firstIndex(of: "\"") else { return nil }
        return String(text[start.upperBound..<end])
    }

    /// Service names: lowercase ASCII letters, digits and '-', starting with a letter, at most 40.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first), name.count <= 40 else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }

    static func moduleName(_ name: String) -> String { name.replacingOccurrences(of: "-", with: "_") }

    /// Applications, then probes: one line per service, the name padded, then its summary.
    public static func listing() -> String {
        let width = all.map(\.name.count).max() ?? 0
        var lines: [String] = []
        for kind in ServiceInfo.Kind.allCases {
            lines.append(kind == .application ? "applications:" : "probes (the kernel's own checks):")
            for service in all where service.kind == kind {
                lines.append("  " + service.name + String(repeating: " ", count: width + 2 - service.name.count) + service.summary)
            }
        }
        return lines.joined(separator: "\n")
    }
}
