// `toro bench soak [--seconds N]`: kv and then static-web on MicroVM (TCG, 64 MiB, the
// default limits), each for N seconds (default 60) under a mix of well-behaved and
// hostile clients at once:
//
//   good          4 kv clients (own keys, SET:GET 1:3) / 4 HTTP clients (GET, bodies compared)
//   idle flood    1,500 connections held without a byte, re-opened as the guest closes them
//   key flood     (kv) pipelined SETs of 512-byte values until `ERROR full`, and on
//   slow readers  requests for many replies (kv GETs, a 1 MiB file) that are never read
//   garbage       random bytes, over-long lines, binary junk, resets
//
// Good clients behave as well-behaved clients do: a connect refused at once is tried again,
// and an idempotent request whose connection closed before any reply is sent once more
// on a new connection (RFC 9110 §9.2.2); both are counted in the report, and a request
// that fails twice, or gets a wrong answer, is a failure.
//
// It reports the good clients' success rate and latency, what the guest refused or
// closed, and the heap before and after: the `idle` report after a warm-up (the good
// clients' keys set and one key flood to the limit and back, so the table's storage has
// had its largest size, which a Swift Dictionary keeps), then again once every client has
// gone. It fails (status 1) when a good
// request went unanswered or was answered wrongly, the heap did not return to its
// baseline, or the guest stopped; never on a time. `./toro test` runs it briefly
// (BootTests/SoakBootTests.swift) through `soak(service:...)`, the same code path.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

public enum SoakBench {
    public struct Options: Equatable, Sendable {
        public var seconds = 60
        public init() {}
    }

    public static let idleConnections = 1500
    public static let goodClients = 4
    /// kv's key flood: values of this size (the soak keeps kv's default limits).
    public static let floodValueSize = 512

    public static func parse(_ arguments: [String]) throws(ToolFailure) -> Options {
        var options = Options()
        var reader = ArgumentReader(arguments)
        while let flag = try reader.nextFlag() {
            switch flag {
            case "--seconds":
                options.seconds = try ArgumentReader.number(try reader.value(for: flag), flag: flag, range: 5...3600,
                                                            what: "a number of seconds")
            default:
                throw ArgumentReader.unknown(flag, command: "bench soak")
            }
        }
        guard reader.passthrough.isEmpty else {
            throw ToolFailure(.badArgument, "bench soak takes no kernel arguments (nothing after --)")
        }
        return options
    }

    /// One service's soak: what the clients saw and the guest's heap.
    public struct Report: Sendable {
        public var service: String
        public var seconds: Int
        public var goodSent = 0
        public var goodAnswered = 0
        public var latencies: [Double] = []
        public var failures: [String] = []
        public var floodHeldMost = 0
        public var floodClosedByGuest = 0
        public var keysStored = 0
        public var fullReplies = 0
        /// 'ERROR full' replies to the warm-up's flood, which runs until the limit whatever
        /// the machine's speed (the soak's own flood may not get there in a short soak).
        public var warmUpFullReplies = 0
        public var slowReaders = 0
        public var garbageConnections = 0
        public var goodConnectRetries = 0
        public var goodRequestRetries = 0
        public var heapBefore: IdleHeap?
        public var heapAfter: IdleHeap?
        public var guestRunning = true
        /// The guest's log lines during the soak (its refusals, pressure and failures: one
        /// per burst), idle reports left out; at most 30.
        public var guestLines: [String] = []
        /// The host back-ends' lines (`toro run`'s stderr: `toro-vsock: …`, `toro-fs: …`) from
        /// boot to the end of the soak: a broken ring or a refused guest is only told there.
        /// Shown in `lines` when the soak failed; the first 20 and the last 20.
        public var backendLines: [String] = []

        public var passed: Bool {
            failures.isEmpty && goodSent > 0 && goodSent == goodAnswered && heapBefore != nil && heapBefore == heapAfter
                && guestRunning
        }

        public var lines: [String] {
            let sorted = latencies.sorted()
            func ms(_ fraction: Double) -> String {
                KVBench.percentile(sorted, fraction).map { String(format: "%.1f ms", $0 * 1000) } ?? "-"
            }
            let rate = goodSent == 0 ? 0 : 100 * Double(goodAnswered) / Double(goodSent)
            var out = ["soak \(service) (\(seconds) s): good requests \(goodAnswered)/\(goodSent) answered right "
                       + "(\(String(format: "%.2f", rate))%), latency p50 \(ms(0.5)) p99 \(ms(0.99)) max \(ms(1)); "
                       + "\(goodConnectRetries) of their connects refused and retried, "
                       + "\(goodRequestRetries) requests sent again after their connection closed before a reply"]
            out.append("  idle flood: up to \(floodHeldMost) connections held, \(floodClosedByGuest) refused or closed by the guest"
                       + "; slow readers: \(slowReaders); garbage connections: \(garbageConnections)"
                       + (service == "kv" ? "; key flood: \(keysStored) keys stored, \(fullReplies) 'ERROR full' "
                                           + "(warm-up: \(warmUpFullReplies) 'ERROR full')" : ""))
            let heap = { (h: IdleHeap?) in h.map { "\($0.bytes) bytes in \($0.allocations) allocations" } ?? "no report" }
            out.append("  heap in use: \(heap(heapBefore)) before, \(heap(heapAfter)) after; guest \(guestRunning ? "running" : "stopped")"
                       + "; its log during the soak:")
            out += guestLines.map { "    " + $0 }
            return passed ? out : out + backendSection
        }

        /// `lines` with the back-ends' lines even when the soak passed: the boot test's
        /// messages, since it also asserts what `passed` leaves out (the key flood's limit).
        public var allLines: [String] { passed ? lines + backendSection : lines }

        var backendSection: [String] {
            ["  the back-ends' log (toro run's stderr)" + (backendLines.isEmpty ? ": nothing" : ":")]
                + backendLines.map { "    " + $0 }
        }
    }

    /// The figures of a service's `idle` report line.
    public struct IdleHeap: Equatable, Sendable {
        public var bytes: Int
        public var allocations: Int

        /// `<service>: idle, heap in use B bytes in N allocations, ...` (timestamped or not).
        public static func parse(_ line: String, service: String) -> IdleHeap? {
            let text = KernelLog.stripTimestamp(Substring(line)).map(String.init) ?? line
            guard text.hasPrefix("\(service): idle, heap in use ") else { return nil }
            let words = text.split(separator: " ")
            guard words.count >= 10, words[6] == "bytes", let bytes = Int(words[5]), let allocations = Int(words[8]) else { return nil }
            return IdleHeap(bytes: bytes, allocations: allocations)
        }
    }

    /// Waits for the guest's idle report after line `from` and a quiet second after it;
    /// the last such report.
    static func idleReport(_ guest: BackgroundProcess, service: String, from: Int) -> IdleHeap? {
        guard guest.waitForLine(from: from, timeout: 180, where: { IdleHeap.parse($0, service: service) != nil }) != nil else { return nil }
        Thread.sleep(forTimeInterval: 2)
        return guest.outputLines[from...].compactMap { IdleHeap.parse($0, service: service) }.last
    }

    /// The back-ends' lines among `errorLines` (`toro run`'s stderr): the first and the last
    /// `keep` of them, with a line saying how many were left out between.
    static func backendLines(_ errorLines: [String], keep: Int = 20) -> [String] {
        let lines = errorLines.filter { $0.hasPrefix("toro-vsock:") || $0.hasPrefix("toro-fs:") }
        guard lines.count > 2 * keep else { return lines }
        return Array(lines.prefix(keep)) + ["… \(lines.count - 2 * keep) more …"] + Array(lines.suffix(keep))
    }

    /// The files static-web serves during the soak, written into `folder`.
    public static func webFiles(in folder: String) throws -> [(path: String, bytes: [UInt8])] {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var state: UInt64 = 0x50A4
        func bytes(_ count: Int) -> [UInt8] {
            (0..<count).map { _ in state = state &* 6364136223846793005 &+ 1442695040888963407; return UInt8(truncatingIfNeeded: state >> 33) }
        }
        let files: [(String, [UInt8])] = [("/index.html", Array("<h1>soak</h1>\n".utf8)), ("/small.bin", bytes(1024)),
                                          ("/page.bin", bytes(20_000)), ("/big.bin", bytes(1 << 20))]
        for (path, content) in files { try Data(content).write(to: URL(fileURLWithPath: folder + path)) }
        return files.map { (path: $0.0, bytes: $0.1) }
    }

    /// Soaks `service` ("kv" or "static-web") booted in `guest` for `seconds`.
    public static func soak(service: String, guest: BackgroundProcess, seconds: Int,
                            files: [(path: String, bytes: [UInt8])] = []) -> Report {
        HeldConnections.raiseDescriptorLimit()
        var report = Report(service: service, seconds: seconds)
        let port = guest.port
        let tally = SoakTally()
        let isKV = service == "kv"
        let goodFiles = files.filter { $0.path != "/big.bin" }

        // Warm-up, then the baseline.
        let mark = guest.outputLines.count
        if isKV {
            Console.progress("soak kv: warm-up (keys, and one key flood to the limit and back)…")
            // The good clients' keys first: they stay in the table throughout, as they will
            // during the soak, so the table's storage is the same before and after.
            do throws(KVClientError) {
                let client = try KVClient.connect(port: port, within: 30, timeout: 60)
                for (key, value) in SoakClients.goodKeys(clients: goodClients) {
                    let reply = try client.request("SET \(key) \(value)")
                    if reply != "OK" { report.failures.append("warm-up: SET \(key) got '\(reply)'") }
                }
                _ = try? client.request("QUIT")
                client.close()
            } catch {
                report.failures.append("warm-up: \(error)")
            }
            let warm = SoakTally()
            if SoakClients.keyFlood(port: port, tag: "warm", size: floodValueSize, stop: nil, tally: warm) == nil {
                warm.with { report.failures += $0.failures.map { "warm-up: " + $0 } }
            }
            warm.with { report.warmUpFullReplies = $0.fullReplies }
        } else {
            Console.progress("soak static-web: warm-up (every file once)…")
            if let client = try? WebClient(port: port) {
                for file in files { _ = try? client.request(file.path) }
                client.close()
            }
        }
        report.heapBefore = idleReport(guest, service: service, from: mark)

        Console.progress("soak \(service): \(seconds) s of good and hostile clients…")
        let stop = StopFlag()
        let done = DispatchGroup()
        func spawn(_ body: @escaping @Sendable () -> Void) {
            done.enter()
            Thread.detachNewThread { body(); done.leave() }
        }
        spawn { SoakClients.idleFlood(port: port, target: idleConnections, stop: stop, tally: tally) }
        spawn { SoakClients.garbage(port: port, seed: 7, stop: stop, tally: tally) }
        if isKV {
            spawn { SoakClients.keyFlood(port: port, tag: "flood", size: floodValueSize, stop: stop, tally: tally) }
            let request = Array("GET good0_0\n".utf8)
            spawn { SoakClients.slowReaders(port: port, request: request, copies: 100_000, hold: 5, stop: stop, tally: tally) }
            for index in 0..<goodClients { spawn { SoakClients.kvClient(port: port, index: index, stop: stop, tally: tally) } }
        } else {
            let request = Array("GET /big.bin HTTP/1.1\r\nHost: soak\r\n\r\n".utf8)
            spawn { SoakClients.slowReaders(port: port, request: request, copies: 4, hold: 5, stop: stop, tally: tally) }
            for index in 0..<goodClients {
                spawn { SoakClients.webClient(port: port, index: index, files: goodFiles, stop: stop, tally: tally) }
            }
        }
        Thread.sleep(forTimeInterval: Double(seconds))
        let end = guest.outputLines.count
        stop.set()
        if done.wait(timeout: .now() + 300) == .timedOut { report.failures.append("the clients did not stop within 5 minutes") }
        tally.with { t in
            report.goodSent = t.goodSent; report.goodAnswered = t.goodAnswered; report.latencies = t.latencies
            report.failures += t.failures; report.floodHeldMost = t.floodHeldMost; report.floodClosedByGuest = t.floodClosedByGuest
            report.keysStored = t.keysStored; report.fullReplies = t.fullReplies; report.slowReaders = t.slowReaders
            report.garbageConnections = t.garbageConnections; report.goodConnectRetries = t.goodConnectRetries
            report.goodRequestRetries = t.goodRequestRetries
        }
        report.heapAfter = idleReport(guest, service: service, from: end)
        report.guestRunning = guest.termination == nil
        report.guestLines = Array(guest.outputLines[mark...].filter { line in
            !line.contains(": idle, heap in use") && KernelLog.stripTimestamp(Substring(line)) != nil
        }.prefix(30))
        report.backendLines = backendLines(guest.errorLines)
        return report
    }

    public static func main(_ arguments: [String], paths: Paths) -> Int32 {
        let options: Options
        do throws(ToolFailure) {
            options = try parse(arguments)
            try Installer.ensure(Installer.forBooting)
            let soakBuilder = KernelBuilder(paths: paths)
            for service in ["kv", "static-web"] { try soakBuilder.build(.microvm, service: service) }
        } catch {
            Console.error(error.message)
            return error.status.rawValue
        }
        let folder = NSTemporaryDirectory() + "toro-soak-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        Console.line("soak: kv, then static-web, each \(options.seconds) s under TCG with 64 MiB and the default limits; "
                     + "\(goodClients) good clients beside an idle flood of \(idleConnections), slow readers, garbage"
                     + " and (kv) a key flood")
        var reports: [Report] = []
        for service in ["kv", "static-web"] {
            do throws(ToolFailure) {
                var files: [(path: String, bytes: [UInt8])] = []
                if service == "static-web" {
                    do { files = try webFiles(in: folder) } catch {
                        throw ToolFailure(.qemuFailed, "could not write the soak folder \(folder): \(error)")
                    }
                }
                let guest = try BenchGuest.start(service: service, share: service == "kv" ? nil : folder, paths: paths)
                defer { _ = guest.stop() }
                let report = soak(service: service, guest: guest, seconds: options.seconds, files: files)
                for line in report.lines { Console.line(line) }
                for failure in report.failures.prefix(10) { Console.error(failure) }
                reports.append(report)
            } catch {
                Console.error(error.message)
                return error.status.rawValue
            }
        }
        return reports.allSatisfy(\.passed) ? 0 : 1
    }
}
