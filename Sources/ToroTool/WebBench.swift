// `toro bench web [--runs N] [--requests N] [--platform legacy|microvm|all]`: the static-web
// service on each platform (TCG; both by default) next to `python3 -m http.server` serving
// the same folder, measured by the same client (WebClient below) in the same run: requests
// per second for a 1 KiB file over 4 connections (median of the runs) and MiB/s for one
// 64 MiB file (median of the runs), then the ratio Toro / host for each platform. microvm
// gets the folder through `--share` and toro-fs and the port through `-p` and toro-vsock;
// legacy gets an ext2 image of the folder (built here, attached with `--disk`, removed at
// the end: a guest stopped by a signal never unmounts it, so nothing is written back) and
// the port through virtio-net, Toro's TCP/IP and QEMU's user networking. Figures only: a
// slow run never fails the command; a wrong body or a boot that fails does (the other
// platform is still measured).
//
// The client keeps a connection alive while the server allows it (static-web does;
// python's http.server speaks HTTP/1.0 and closes after each response, so the client
// reconnects, as any client would). Runs are interleaved (Toro, host, then again).
// The folder is generated under the temporary folder and removed at the end.
//
// Also here, shared with the static-web boot test: WebClient, a small blocking HTTP/1.1
// client over KVClient's socket, and WebIdleReport, the guest's idle heap line.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One HTTP response as WebClient read it.
public struct WebResponse: Sendable {
    public var status: Int
    /// Header fields in order, names as sent.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Body bytes received (also when they were not kept).
    public var bodyLength: Int
    /// The server said it closes the connection after this response.
    public var closes: Bool

    /// The first field called `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// A blocking HTTP/1.1 client on one connection (one thread at a time).
public final class WebClient {
    public let connection: KVClient
    private var pending: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 256 * 1024)

    public init(port: Int, within seconds: Double = 10, timeout: Double = 120) throws(KVClientError) {
        connection = try KVClient.connect(port: port, within: seconds, timeout: timeout)
    }

    public func send(_ bytes: [UInt8]) throws(KVClientError) { try connection.send(bytes) }

    public func close() { connection.close() }

    /// Sends `METHOD target` (keep-alive) and reads the response.
    public func request(_ target: String, method: String = "GET", keepBody: Bool = true) throws(KVClientError) -> WebResponse {
        try send(Array("\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
        return try readResponse(isHead: method == "HEAD", keepBody: keepBody)
    }

    /// Reads more bytes into `pending`; false at end of stream.
    private func fill() throws(KVClientError) -> Bool {
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(connection.fd, $0.baseAddress, $0.count) }
            if count > 0 { pending += chunk[0..<count]; return true }
            if count == 0 { return false }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut }
            throw .io("read: \(String(cString: strerror(errno)))")
        }
    }

    /// Reads one response: the head, then Content-Length bytes of body (none for HEAD),
    /// or the rest of the stream when there is no Content-Length.
    public func readResponse(isHead: Bool = false, keepBody: Bool = true) throws(KVClientError) -> WebResponse {
        let separator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int? = nil
        while headEnd == nil {
            if pending.count >= 4 {
                headEnd = (0...(pending.count - 4)).first { pending[$0..<$0 + 4].elementsEqual(separator) }
            }
            if headEnd == nil { guard try fill() else { throw .closed } }
        }
        let head = String(decoding: pending[0..<headEnd!], as: UTF8.self)
        pending.removeFirst(headEnd! + 4)
        let lines = head.components(separatedBy: "\r\n")
        let statusWords = lines[0].split(separator: " ")
        guard statusWords.count >= 2, let status = Int(statusWords[1]) else { throw .io("bad status line '\(lines[0])'") }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw .io("bad header line '\(line)'") }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var response = WebResponse(status: status, headers: headers, body: [], bodyLength: 0, closes: false)
        let connectionHeader = response.header("Connection")?.lowercased()
        response.closes = connectionHeader == "close" || (lines[0].hasPrefix("HTTP/1.0") && connectionHeader != "keep-alive")
        if isHead { return response }
        if let lengthText = response.header("Content-Length") {
            guard let length = Int(lengthText) else { throw .io("bad Content-Length '\(lengthText)'") }
            while response.bodyLength < length {
                if pending.isEmpty { guard try fill() else { throw .closed } }
                let take = min(pending.count, length - response.bodyLength)
                if keepBody { response.body += pending[0..<take] }
                response.bodyLength += take
                pending.removeFirst(take)
            }
        } else {
            while true {
                if keepBody { response.body += pending }
                response.bodyLength += pending.count
                pending.removeAll(keepingCapacity: true)
                guard try fill() else { break }
            }
            response.closes = true
        }
        return response
    }
}

/// The guest's `static-web: idle, heap in use B bytes in N allocations, R requests` line.
public struct WebIdleReport: Equatable, Sendable {
    public var bytes: Int
    public var allocations: Int
    public var requests: Int

    public static func parse(_ line: String) -> WebIdleReport? {
        let text = KernelLog.stripTimestamp(Substring(line)).map(String.init) ?? line
        guard text.hasPrefix("static-web: idle, heap in use ") else { return nil }
        let words = text.split(separator: " ")
        // static-web: idle, heap in use B bytes in N allocations, R requests   (12 words)
        guard words.count == 12, words[6] == "bytes", words[9] == "allocations,", words[11] == "requests",
              let bytes = Int(words[5]), let allocations = Int(words[8]), let requests = Int(words[10]) else { return nil }
        return WebIdleReport(bytes: bytes, allocations: allocations, requests: requests)
    }
}

public enum WebBench {
    public struct Options: Equatable, Sendable {
        public var runs = 3
        /// Requests of the 1 KiB file per run.
        public var requests = 1000
        /// `--platform`: both unless one is named.
        public var platforms = GuestPlatform.allCases
        public init() {}
    }

    public static let connections = 4
    public static let smallSize = 1024
    public static let largeSize = 64 << 20

    public static func parse(_ arguments: [String]) throws(ToolFailure) -> Options {
        var options = Options()
        (options.runs, options.requests, options.platforms) = try BenchArguments.parse(
            arguments, command: "bench web", runs: (options.runs, 1...100), requests: (options.requests, 4...1_000_000))
        return options
    }

    /// Writes `small.bin` (1 KiB), `large.bin` (64 MiB) of seeded pseudo-random bytes and an
    /// index.html into `folder`; returns the two files' bytes.
    public static func generate(in folder: String) throws -> (small: [UInt8], large: [UInt8]) {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var state: UInt64 = 0x5EED
        func bytes(_ count: Int) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: count)
            for i in stride(from: 0, to: count, by: 8) {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                var word = state
                for j in i..<min(i + 8, count) { out[j] = UInt8(truncatingIfNeeded: word >> 33); word = word &* 31 &+ 7 }
            }
            return out
        }
        let small = bytes(smallSize), large = bytes(largeSize)
        try Data(small).write(to: URL(fileURLWithPath: folder + "/small.bin"))
        try Data(large).write(to: URL(fileURLWithPath: folder + "/large.bin"))
        try Data("<h1>bench</h1>\n".utf8).write(to: URL(fileURLWithPath: folder + "/index.html"))
        return (small, large)
    }

    /// `requests` GETs of `target` over `connections` connections; the seconds it took,
    /// or the first failure. Each body is compared with `expected`.
    public static func measureRequests(port: Int, target: String, expected: [UInt8], requests: Int,
                                       connections: Int) -> Result<Double, KVClientError> {
        let failure = FailureBox()
        let done = DispatchGroup()
        let begin = BackgroundProcess.monotonicNow()
        for index in 0..<connections {
            let share = requests / connections + (index < requests % connections ? 1 : 0)
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                do throws(KVClientError) {
                    var client = try WebClient(port: port)
                    for _ in 0..<share {
                        let response = try client.request(target)
                        guard response.status == 200, response.body == expected else {
                            throw .io("GET \(target): status \(response.status), \(response.bodyLength) bytes, not the file")
                        }
                        if response.closes { client.close(); client = try WebClient(port: port) }
                    }
                    client.close()
                } catch {
                    failure.set(error)
                }
            }
        }
        done.wait()
        if let error = failure.get() { return .failure(error) }
        return .success(BackgroundProcess.monotonicNow() - begin)
    }

    /// One GET of the large file on a fresh connection: the seconds from sending the
    /// request to the last body byte; the body is compared afterwards, untimed.
    public static func measureLarge(port: Int, expected: [UInt8]) -> Result<Double, KVClientError> {
        do throws(KVClientError) {
            let client = try WebClient(port: port)
            defer { client.close() }
            let begin = BackgroundProcess.monotonicNow()
            let response = try client.request("/large.bin")
            let seconds = BackgroundProcess.monotonicNow() - begin
            guard response.status == 200, response.body == expected else {
                throw .io("GET /large.bin: status \(response.status), \(response.bodyLength) bytes, not the file")
            }
            return .success(seconds)
        } catch {
            return .failure(error)
        }
    }

    public static func main(_ arguments: [String], paths: Paths) -> Int32 {
        let options: Options
        let folder = NSTemporaryDirectory() + "toro-bench-web-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let files: (small: [UInt8], large: [UInt8])
        var guests: [(platform: GuestPlatform, process: BackgroundProcess)] = []
        var failedPlatforms: [GuestPlatform] = []
        var images: [ShareDisk] = []
        defer { for image in images { DiskImage.discard(image.directory) } }
        let host: BackgroundProcess
        do throws(ToolFailure) {
            options = try parse(arguments)
            try Installer.ensure(Installer.forBooting + (options.platforms.contains(.legacy) ? Installer.e2fsprogs : []))
            guard let python = Installer.which("python3") else {
                throw ToolFailure(.missingTool, "bench web compares with python3 -m http.server, and python3 is not on PATH")
            }
            do { files = try generate(in: folder) } catch {
                throw ToolFailure(.qemuFailed, "could not write the benchmark folder \(folder): \(error)")
            }
            (guests, failedPlatforms) = try BenchArguments.startGuests(service: "static-web", platforms: options.platforms,
                                                                       paths: paths) { (platform) throws(ToolFailure) in
                guard platform == .legacy else { return (folder, nil) }
                let image = try DiskImage.build(SharedFolder(path: folder, readOnly: true))
                images.append(image)
                return (nil, image.imagePath)
            }
            guard let hostPort = KVClient.freePort(), !guests.contains(where: { $0.process.port == hostPort }) else {
                throw ToolFailure(.qemuFailed, "no free TCP port on 127.0.0.1")
            }
            Console.progress("starting python3 -m http.server \(hostPort) on the same folder…")
            host = try BackgroundProcess([python, "-m", "http.server", "\(hostPort)", "--bind", "127.0.0.1", "--directory", folder])
            host.port = hostPort
        } catch {
            for guest in guests { _ = guest.process.stop() }
            Console.error(error.message)
            return error.status.rawValue
        }
        defer { for guest in guests { _ = guest.process.stop() }; _ = host.stop() }
        let targets = guests.map { ("toro \($0.platform.rawValue)", $0.process.port) } + [("python3 host", host.port)]
        var rates = [[Double]](repeating: [], count: targets.count), speeds = rates
        var failures: [String] = []
        Console.line("web benchmark: \(options.runs) runs; \(options.requests) GETs of a 1 KiB file over \(connections) connections "
                     + "(keep-alive where the server allows it), and one GET of a 64 MiB file; static-web under TCG, 1 CPU, 64 MiB ("
                     + guests.map { reachedThrough($0.platform) }.joined(separator: "; ") + ") and python3 -m http.server")
        for run in 1...options.runs {
            for (index, (label, port)) in targets.enumerated() {
                Console.progress("run \(run)/\(options.runs): \(label)…")
                switch measureRequests(port: port, target: "/small.bin", expected: files.small, requests: options.requests,
                                       connections: connections) {
                case .success(let seconds): rates[index].append(Double(options.requests) / seconds)
                case .failure(let error): failures.append("\(label), 1 KiB: \(error)")
                }
                switch measureLarge(port: port, expected: files.large) {
                case .success(let seconds): speeds[index].append(Double(largeSize) / 1_048_576 / seconds)
                case .failure(let error): failures.append("\(label), 64 MiB: \(error)")
                }
            }
        }
        for line in table(labels: targets.map(\.0), rates: rates, speeds: speeds) { Console.line(line) }
        for platform in failedPlatforms { Console.line("toro \(platform.rawValue): did not boot (see above)") }
        for failure in failures.prefix(10) { Console.error(failure) }
        return failures.isEmpty && failedPlatforms.isEmpty ? 0 : 1
    }

    /// What each platform's guest is served through, for the first line.
    static func reachedThrough(_ platform: GuestPlatform) -> String {
        switch platform {
        case .microvm: "microvm: virtio-fs through toro-fs, vsock through toro-vsock"
        case .legacy: "legacy: an ext2 image on virtio-blk, virtio-net and Toro's TCP/IP behind QEMU's user networking"
        }
    }

    static func table(labels: [String], rates: [[Double]], speeds: [[Double]]) -> [String] {
        func column(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        func number(_ value: Double?, _ format: String) -> String { value.map { String(format: format, $0) } ?? "-" }
        var lines = ["target".padding(toLength: 14, withPad: " ", startingAt: 0) + column("1 KiB req/s", 13) + column("64 MiB MiB/s", 14)]
        for index in labels.indices {
            lines.append(labels[index].padding(toLength: 14, withPad: " ", startingAt: 0)
                         + column(number(BenchCommand.median(rates[index]), "%.0f"), 13)
                         + column(number(BenchCommand.median(speeds[index]), "%.1f"), 14))
        }
        // The last label is the host; one ratio line per Toro platform before it.
        let host = labels.count - 1
        for index in 0..<host {
            func ratio(_ values: [[Double]]) -> String {
                guard let toro = BenchCommand.median(values[index]), let base = BenchCommand.median(values[host]), base > 0 else { return "-" }
                return String(format: "%.2fx", toro / base)
            }
            lines.append("\(labels[index]) / host (medians): 1 KiB req/s \(ratio(rates)), 64 MiB MiB/s \(ratio(speeds))")
        }
        return lines
    }
}

/// The first error a worker thread met.
final class FailureBox: @unchecked Sendable {
    private var error: KVClientError?
    private let lock = NSLock()
    func set(_ value: KVClientError) { lock.lock(); if error == nil { error = value }; lock.unlock() }
    func get() -> KVClientError? { lock.lock(); defer { lock.unlock() }; return error }
}
