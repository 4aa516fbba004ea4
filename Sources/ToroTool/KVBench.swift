// `toro bench kv [--runs N] [--requests N] [--platform legacy|microvm|all]`: the kv service
// on each platform (under TCG, reached through `-p`: toro-vsock on microvm, virtio-net and
// Toro's TCP/IP behind QEMU's user networking on legacy; both by default) next to a
// host-native server speaking the same protocol (HostKVServer), measured by the same client
// (KVClient): requests per second and latency p50/p90/p99 with 1 connection and with 50
// connections, and the ratio Toro / host for each platform. Figures only: a slow run never
// fails the command; a wrong reply or a boot that fails does (the other platform is still
// measured).
//
// Each measurement opens its connections first (one untimed GET each, so every connection
// is served before the clock starts), then every connection sends its share of the
// requests one at a time, waiting for each reply: a quarter SET, three quarters GET of the
// key just set, every reply checked. Runs are interleaved (Toro 1, Toro 50, host 1,
// host 50, then again) so that noise on the host hits both alike; requests per second is
// the median over the runs, latencies are percentiles of every request of every run.
//
// Each guest is booted by this same tool as a child (`toro run --platform P --service kv
// -p PORT:80 --accel tcg`, BenchGuest.swift), both before the first run (an idle guest
// halts and costs nothing), and stopped with SIGTERM at the end (its own handler stops
// QEMU and the back-end).

#if canImport(Glibc)
import Glibc
#endif
import Foundation

public enum KVBench {
    public struct Options: Equatable, Sendable {
        public var runs = 3
        /// Requests per measurement (spread over its connections).
        public var requests = 5000
        /// `--platform`: both unless one is named.
        public var platforms = GuestPlatform.allCases
        public init() {}
    }

    public static let connectionCounts = [1, 50]
    static let usage = "./toro bench kv [--runs N] [--requests N] [--platform legacy|microvm|all]"
    static let hostLabel = "host native"

    /// Parses the arguments after `bench kv`.
    public static func parse(_ arguments: [String]) throws(ToolFailure) -> Options {
        var options = Options()
        (options.runs, options.requests, options.platforms) = try BenchArguments.parse(
            arguments, command: "bench kv", runs: (options.runs, 1...1000), requests: (options.requests, 50...10_000_000))
        return options
    }

    /// The figures of one target at one connection count.
    public struct Figures: Sendable {
        public var label: String
        public var connections: Int
        public var requestsPerSecond: [Double] = []
        public var latencies: [Double] = []
        public var failures: [String] = []
    }

    public static func main(_ arguments: [String], paths: Paths) -> Int32 {
        let guests: [(platform: GuestPlatform, process: BackgroundProcess)]
        let failedPlatforms: [GuestPlatform]
        let options: Options
        do throws(ToolFailure) {
            options = try parse(arguments)
            try Installer.ensure(Installer.forBooting)
            (guests, failedPlatforms) = try BenchArguments.startGuests(service: "kv", platforms: options.platforms,
                                                                       paths: paths) { _ in (nil, nil) }
        } catch {
            Console.error(error.message)
            return error.status.rawValue
        }
        defer { for guest in guests { _ = guest.process.stop() } }
        let host: HostKVServer
        do throws(KVClientError) { host = try HostKVServer() } catch {
            Console.error("could not start the host-native server: \(error)")
            return ToroStatus.qemuFailed.rawValue
        }
        host.start()
        defer { host.stop() }

        let targets = guests.map { ("toro \($0.platform.rawValue)", $0.process.port) } + [(hostLabel, host.port)]
        var figures: [Figures] = []
        for (label, _) in targets {
            for connections in connectionCounts { figures.append(Figures(label: label, connections: connections)) }
        }
        Console.line("kv benchmark: \(plural(options.runs, "run")) of \(options.requests) requests at each of "
                     + "\(connectionCounts.map(String.init).joined(separator: " and ")) connections, "
                     + "25% SET / 75% GET, one request in flight per connection; kv under TCG, 1 CPU, 64 MiB ("
                     + guests.map { BenchArguments.reachedThrough($0.platform) }.joined(separator: "; ")
                     + ") and a host-native threaded server")
        for run in 1...options.runs {
            var index = 0
            for (label, port) in targets {
                for connections in connectionCounts {
                    Console.progress("run \(run)/\(options.runs): \(label), \(plural(connections, "connection"))…")
                    let result = measure(port: port, connections: connections, requests: options.requests,
                                         tag: "r\(run)\(label.split(separator: " ").last!.first!)\(connections)")
                    if let seconds = result.seconds, result.failures.isEmpty {
                        figures[index].requestsPerSecond.append(Double(options.requests) / seconds)
                    }
                    figures[index].latencies += result.latencies
                    figures[index].failures += result.failures
                    index += 1
                }
            }
        }
        for line in table(figures) { Console.line(line) }
        for platform in failedPlatforms { Console.line("toro \(platform.rawValue): did not boot (see above)") }
        let failures = figures.flatMap { figure in figure.failures.map { "\(figure.label), \(plural(figure.connections, "connection")): \($0)" } }
        for failure in failures.prefix(10) { Console.error(failure) }
        if failures.count > 10 { Console.error("… and \(failures.count - 10) more failures") }
        return failures.isEmpty && failedPlatforms.isEmpty ? 0 : 1
    }

    /// One measurement: wall time (nil when it could not run), each request's latency, and
    /// what went wrong (a wrong reply, a connection that failed).
    public static func measure(port: Int, connections: Int, requests: Int, tag: String)
        -> (seconds: Double?, latencies: [Double], failures: [String]) {
        var clients: [KVClient] = []
        for index in 0..<connections {
            do throws(KVClientError) {
                let client = try KVClient.connect(port: port, within: 10)
                let reply = try client.request("GET \(tag)_warm_\(index)")
                guard reply == "NOT_FOUND" else { return (nil, [], ["warm-up GET: expected NOT_FOUND, got '\(reply)'"]) }
                clients.append(client)
            } catch {
                return (nil, [], ["connection \(index): \(error)"])
            }
        }
        let results = ResultSlots(count: connections)
        let start = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        for (index, client) in clients.enumerated() {
            let share = requests / connections + (index < requests % connections ? 1 : 0)
            let box = ClientBox(client)
            done.enter()
            Thread.detachNewThread {
                start.wait()
                results.set(index, run(box.client, requests: share, key: "\(tag)_c\(index)"))
                done.leave()
            }
        }
        let begin = BackgroundProcess.monotonicNow()
        for _ in clients { start.signal() }
        done.wait()
        let seconds = BackgroundProcess.monotonicNow() - begin
        var latencies: [Double] = [], failures: [String] = []
        for slot in results.values {
            latencies += slot.latencies
            if let failure = slot.failure { failures.append(failure) }
        }
        for client in clients where failures.isEmpty {
            if let reply = try? client.request("QUIT"), reply != "BYE" { failures.append("QUIT: expected BYE, got '\(reply)'") }
        }
        return (seconds, latencies, failures)
    }

    /// One connection's requests: SET key_n value, then three GETs of it, repeated.
    static func run(_ client: KVClient, requests: Int, key: String) -> (latencies: [Double], failure: String?) {
        var latencies: [Double] = []
        latencies.reserveCapacity(requests)
        var value = ""
        var currentKey = ""
        for i in 0..<requests {
            let request: String, expected: String
            if i % 4 == 0 {
                currentKey = "\(key)_\(i / 4 % 32)"
                value = "value \(i) of \(key)"
                request = "SET \(currentKey) \(value)"
                expected = "OK"
            } else {
                request = "GET \(currentKey)"
                expected = "VALUE \(value)"
            }
            let sent = BackgroundProcess.monotonicNow()
            do throws(KVClientError) {
                let reply = try client.request(request)
                latencies.append(BackgroundProcess.monotonicNow() - sent)
                if reply != expected { return (latencies, "'\(request)': expected '\(expected)', got '\(reply)'") }
            } catch {
                return (latencies, "'\(request)': \(error)")
            }
        }
        return (latencies, nil)
    }

    static func plural(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }

    /// The value at `fraction` (0…1) of `sorted` by nearest rank.
    public static func percentile(_ sorted: [Double], _ fraction: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let rank = Int((fraction * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    static func median(_ values: [Double]) -> Double? { BenchCommand.median(values) }

    static func table(_ figures: [Figures]) -> [String] {
        func column(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        func number(_ value: Double?, _ format: String) -> String { value.map { String(format: format, $0) } ?? "-" }
        var lines = ["target".padding(toLength: 14, withPad: " ", startingAt: 0) + column("conns", 6) + column("req/s", 11)
                     + column("p50 ms", 10) + column("p90 ms", 10) + column("p99 ms", 10) + column("failed", 8)]
        var summary: [String: (rps: Double?, p: [Double?])] = [:]
        for figure in figures {
            let sorted = figure.latencies.sorted()
            let p = [0.5, 0.9, 0.99].map { percentile(sorted, $0).map { $0 * 1000 } }
            let rps = median(figure.requestsPerSecond)
            summary["\(figure.label) \(figure.connections)"] = (rps, p)
            lines.append(figure.label.padding(toLength: 14, withPad: " ", startingAt: 0) + column("\(figure.connections)", 6)
                         + column(number(rps, "%.0f"), 11) + p.map { column(number($0, "%.3f"), 10) }.joined()
                         + column("\(figure.failures.count)", 8))
        }
        // One line per Toro platform: its figures over the host's, at each connection count.
        var labels: [String] = []
        for figure in figures where figure.label != hostLabel && !labels.contains(figure.label) { labels.append(figure.label) }
        for label in labels {
            var ratios: [String] = []
            for connections in connectionCounts {
                guard let toro = summary["\(label) \(connections)"], let host = summary["\(hostLabel) \(connections)"] else { continue }
                func ratio(_ a: Double?, _ b: Double?) -> String {
                    guard let a, let b, b > 0 else { return "-" }
                    return String(format: a / b >= 10 ? "%.0fx" : "%.2fx", a / b)
                }
                let names = ["p50", "p90", "p99"]
                ratios.append("\(plural(connections, "connection")): req/s \(ratio(toro.rps, host.rps)), "
                              + names.indices.map { "\(names[$0]) \(ratio(toro.p[$0], host.p[$0]))" }.joined(separator: ", "))
            }
            lines.append("\(label) / host: " + ratios.joined(separator: "; "))
        }
        return lines
    }
}

/// Hands a client to the thread that uses it (one thread at a time, as KVClient requires).
final class ClientBox: @unchecked Sendable {
    let client: KVClient
    init(_ client: KVClient) { self.client = client }
}

/// One result per thread.
final class ResultSlots: @unchecked Sendable {
    private var slots: [(latencies: [Double], failure: String?)]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: ([], nil), count: count) }
    func set(_ index: Int, _ value: (latencies: [Double], failure: String?)) { lock.lock(); slots[index] = value; lock.unlock() }
    var values: [(latencies: [Double], failure: String?)] { lock.lock(); defer { lock.unlock() }; return slots }
}
