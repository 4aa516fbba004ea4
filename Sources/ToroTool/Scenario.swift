// A Compat scenario: the options a service is compared with on both platforms.
//
// File format (Compat/<scenario>/scenario), one `key: value` per line; blank lines and
// lines starting with `#` are ignored; each key at most once:
//   service:     the service to boot (default: the folder's name)
//   args:        kernel arguments, separated by spaces (appended after service=<name>)
//   cpus:        number of CPUs (1-255)
//   memory:      MiB of memory
//   share:       FOLDER[:ro], a folder inside the scenario's own folder shared with the
//                guest (compare gives each platform a copy; --share on the command line wins)
//   client:      FILE, a client script inside the scenario's folder (ClientScript.swift):
//                compare forwards a free host port to the guest's `port:`, waits for the
//                service's `ready:` line, runs the script, then stops the guest
//   port:        the guest port the client connects to (1-65535, default 80; needs client:)
//   description: one line for people
// Compat/<scenario>/expected holds the normalised transcript both platforms must print.

import Foundation

public struct Scenario: Equatable, Sendable {
    public var service: String?
    public var args: [String] = []
    public var cpus: Int?
    public var memoryMiB: Int?
    /// `share:`, relative to the scenario's folder (no `..`, not absolute).
    public var share: SharedFolder?
    /// `client:`, a client script's file, relative to the scenario's folder.
    public var client: String?
    /// `port:`, the guest port the client script connects to.
    public var clientPort: Int?
    public var description: String?

    /// The guest port a client script connects to unless `port:` says otherwise.
    public static let defaultClientPort = 80

    public init() {}

    public static let keys = ["service", "args", "cpus", "memory", "share", "client", "port", "description"]

    /// Parses a scenario file's text; `file` names it in error messages.
    public static func parse(_ text: String, file: String) throws(ToolFailure) -> Scenario {
        var scenario = Scenario()
        var seen: Set<String> = []
        for (index, raw) in text.consoleLines().enumerated() {
            let line = raw.trimmingSpaces()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let place = "\(file):\(index + 1)"
            guard let colon = line.firstIndex(of: ":") else {
                throw ToolFailure(.badArgument, "\(place): expected 'key: value', got '\(line)'")
            }
            let key = String(line[..<colon]).trimmingSpaces()
            let value = String(line[line.index(after: colon)...]).trimmingSpaces()
            guard keys.contains(key) else {
                throw ToolFailure(.badArgument, "\(place): unknown key '\(key)' (known: \(keys.joined(separator: ", ")))")
            }
            guard seen.insert(key).inserted else {
                throw ToolFailure(.badArgument, "\(place): '\(key)' given twice")
            }
            switch key {
            case "service":
                guard Services.named(value) != nil else {
                    throw ToolFailure(.badArgument, "\(place): unknown service '\(value)'")
                }
                scenario.service = value
            case "args":
                scenario.args = value.split(separator: " ").map(String.init)
            case "cpus":
                scenario.cpus = try ArgumentReader.number(value, flag: "\(place): cpus",
                                                          range: 1...RunOptions.maxCPUs, what: "a number of CPUs")
            case "memory":
                scenario.memoryMiB = try ArgumentReader.number(value, flag: "\(place): memory",
                                                               range: 1...RunOptions.maxMemoryMiB, what: "a size in MiB")
            case "share":
                let readOnly = value.hasSuffix(":ro")
                let folder = readOnly ? String(value.dropLast(3)) : value
                guard !folder.isEmpty, !folder.hasPrefix("/"), !folder.split(separator: "/").contains("..") else {
                    throw ToolFailure(.badArgument, "\(place): share needs a folder inside the scenario's folder, got '\(value)'")
                }
                scenario.share = SharedFolder(path: folder, readOnly: readOnly)
            case "client":
                guard !value.isEmpty, !value.hasPrefix("/"), !value.split(separator: "/").contains("..") else {
                    throw ToolFailure(.badArgument, "\(place): client needs a file inside the scenario's folder, got '\(value)'")
                }
                scenario.client = value
            case "port":
                scenario.clientPort = try ArgumentReader.number(value, flag: "\(place): port", range: 1...65535,
                                                                what: "a port number")
            default:
                scenario.description = value
            }
        }
        if scenario.clientPort != nil && scenario.client == nil {
            throw ToolFailure(.badArgument, "\(file): 'port' is the port the client script connects to, and there is no 'client'")
        }
        return scenario
    }

    /// The client script named by `client:`, read from `folder` (the scenario's folder);
    /// `name` is the scenario's, for messages. nil without `client:`.
    public func clientScript(folder: String, name: String) throws(ToolFailure) -> ClientScript? {
        guard let client else { return nil }
        guard let text = try? String(contentsOfFile: folder + "/" + client, encoding: .utf8) else {
            throw ToolFailure(.badArgument, "Compat/\(name)/scenario: client: cannot read '\(client)' in Compat/\(name)")
        }
        return try ClientScript.parse(text, file: "Compat/\(name)/\(client)")
    }

    /// `options` with this scenario's values filled in where the user gave no flag;
    /// `folder` is the scenario's own folder (Compat/<name>), which `share` is inside.
    public func applied(to options: RunOptions, folder: String = ".") throws(ToolFailure) -> RunOptions {
        var result = options
        if let share, !options.given.contains("--share") {
            let path = folder + "/" + share.path + (share.readOnly ? ":ro" : "")
            result.shares = [try RunOptions.parseShare(path, workingDirectory: "/")]
        }
        if let service, !options.given.contains("--service") { result.service = service }
        if let cpus, !options.given.contains("--cpus") { result.cpus = cpus }
        if let memoryMiB, !options.given.contains("--memory") { result.memoryMiB = memoryMiB }
        if options.kernelArgs.isEmpty { result.kernelArgs = args }
        return result
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }),
              let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
