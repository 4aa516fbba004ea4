// The clients of `toro bench soak` (SoakBench.swift), each a loop on a thread of its own
// until the run's stop flag is set: well-behaved kv and HTTP clients that check every
// reply and time it, and the hostile ones (an idle-connection flood, a key flood, slow
// readers that never read, garbage).

#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Set once by the soak when its time is up; read by every client loop.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return stopped }
    func set() { lock.lock(); stopped = true; lock.unlock() }
}

/// What the clients count, shared under a lock.
final class SoakTally: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var goodSent = 0
    private(set) var goodAnswered = 0
    private(set) var latencies: [Double] = []
    private(set) var failures: [String] = []
    private(set) var floodHeldMost = 0
    private(set) var floodClosedByGuest = 0
    private(set) var keysStored = 0
    private(set) var fullReplies = 0
    private(set) var slowReaders = 0
    private(set) var garbageConnections = 0
    /// Connects of good clients that were refused (closed at once) and retried.
    private(set) var goodConnectRetries = 0
    /// Idempotent requests sent again because their connection closed before any reply.
    private(set) var goodRequestRetries = 0

    func with(_ body: (SoakTally) -> Void) { lock.lock(); body(self); lock.unlock() }
    func good(sent: Int, answered: Int, latencies more: [Double], failure: String?) {
        with { $0.goodSent += sent; $0.goodAnswered += answered; $0.latencies += more; if let failure { $0.failures.append(failure) } }
    }
    func fail(_ why: String) { with { $0.failures.append(why) } }
    func flood(held: Int, closed: Int) { with { $0.floodHeldMost = max($0.floodHeldMost, held); $0.floodClosedByGuest += closed } }
    func keys(stored: Int, full: Int) { with { $0.keysStored += stored; $0.fullReplies += full } }
    func slowReader() { with { $0.slowReaders += 1 } }
    func garbage() { with { $0.garbageConnections += 1 } }
    func retried() { with { $0.goodConnectRetries += 1 } }
    func retriedRequest() { with { $0.goodRequestRetries += 1 } }
}

enum SoakClients {
    /// Holds up to `target` idle connections, re-opening those the guest closes.
    static func idleFlood(port: Int, target: Int, stop: StopFlag, tally: SoakTally) {
        let held = HeldConnections(port: port)
        while !stop.isSet {
            held.open(upTo: target)
            tally.flood(held: held.descriptors.count, closed: 0)
            Thread.sleep(forTimeInterval: 0.5)
            tally.flood(held: 0, closed: held.dropClosed())
        }
        held.closeAll()
    }

    /// Connections that send garbage: random bytes, an endless line, binary junk, then go.
    static func garbage(port: Int, seed: UInt64, stop: StopFlag, tally: SoakTally) {
        var state = seed
        func next() -> UInt8 { state = state &* 6364136223846793005 &+ 1442695040888963407; return UInt8(truncatingIfNeeded: state >> 33) }
        var round = 0
        while !stop.isSet {
            round += 1
            guard let client = try? KVClient(port: port, timeout: 5) else { Thread.sleep(forTimeInterval: 0.2); continue }
            var junk = (0..<(round % 3 == 0 ? 8192 : 700)).map { _ in next() }
            if round % 3 == 1 { junk = [UInt8](repeating: 65, count: 6000) + [10] }   // an over-long line
            if round % 3 == 2 { junk += Array("\r\n\r\nGET /../../etc/passwd HTTP/1.1\r\n\r\n".utf8) }
            try? client.send(junk)
            _ = try? client.readLine()
            client.close(reset: round % 2 == 0)
            tally.garbage()
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// Connections that ask for many replies and never read one; each is held until the
    /// guest gives up on it or `hold` seconds pass.
    static func slowReaders(port: Int, request: [UInt8], copies: Int, hold: Double, stop: StopFlag, tally: SoakTally) {
        while !stop.isSet {
            guard let client = try? KVClient(port: port, timeout: 5) else { Thread.sleep(forTimeInterval: 0.2); continue }
            let burst = Array([[UInt8]](repeating: request, count: copies).joined())
            try? client.send(burst)
            let until = Date().addingTimeInterval(hold)
            while !stop.isSet && Date() < until { Thread.sleep(forTimeInterval: 0.2) }
            client.close(reset: true)
            tally.slowReader()
        }
    }

    /// A well-behaved kv client: its own keys, 1 SET (same-sized value) per 3 GETs, every
    /// reply checked and timed. Reconnects (counting a failure) if its connection breaks.
    static let keysPerClient = 8

    /// The good clients' keys with their first values (every value of a key has the same size).
    static func goodKeys(clients: Int) -> [(key: String, value: String)] {
        (0..<clients).flatMap { index in (0..<keysPerClient).map { (key: "good\(index)_\($0)", value: "value-\(index)-\($0)-0") } }
    }

    static func kvClient(port: Int, index: Int, stop: StopFlag, tally: SoakTally) {
        var values = (0..<keysPerClient).map { "value-\(index)-\($0)-0" }
        var client: KVClient? = nil
        var i = 0
        /// A request whose connection closed before any reply, to send again once.
        var retry: (request: String, expected: String)? = nil
        while !stop.isSet {
            if client == nil {
                // A connection refused at once (a host back-end or the guest at its limit
                // while the flood churns) is retried, as a well-behaved client does; each
                // retry is counted. Requests are only sent on a connection that answered.
                do throws(KVClientError) {
                    let fresh = try KVClient.connect(port: port, within: 30, timeout: 60)
                    for (k, value) in values.enumerated() {
                        let reply = try fresh.request("SET good\(index)_\(k) \(value)")
                        guard reply == "OK" else {
                            tally.fail("kv client \(index): SET of its key \(k) got '\(reply)'")
                            return
                        }
                    }
                    client = fresh
                } catch {
                    tally.retried()
                    Thread.sleep(forTimeInterval: 0.2)
                    continue
                }
            }
            let request: String, expected: String
            if let again = retry {
                (request, expected) = again
            } else {
                let k = i % values.count
                if i % 4 == 0 {
                    values[k] = "value-\(index)-\(k)-\(i / 4 % 10)"
                    request = "SET good\(index)_\(k) \(values[k])"
                    expected = "OK"
                } else {
                    request = "GET good\(index)_\(k)"
                    expected = "VALUE \(values[k])"
                }
                i += 1
            }
            let sent = BackgroundProcess.monotonicNow()
            do throws(KVClientError) {
                let reply = try client!.request(request)
                let answered = reply == expected
                retry = nil
                tally.good(sent: 1, answered: answered ? 1 : 0, latencies: [BackgroundProcess.monotonicNow() - sent],
                           failure: answered ? nil : "kv client \(index): '\(request)' got '\(reply)', not '\(expected)'")
            } catch {
                client?.close()
                client = nil
                // Closed before any reply: every request here is idempotent (a GET, or a SET
                // of a fixed value), so it is sent once more on a new connection, as HTTP
                // clients do (RFC 9110 §9.2.2). Counted; a second failure is a failure.
                if retry == nil && error != .timedOut {
                    retry = (request, expected)
                    tally.retriedRequest()
                    continue
                }
                retry = nil
                tally.good(sent: 1, answered: 0, latencies: [], failure: "kv client \(index): '\(request)': \(error)")
            }
        }
        if let client { _ = try? client.request("QUIT"); client.close() }
    }

    /// Fills the table with pipelined SETs of `size`-byte values until `ERROR full`, then
    /// keeps trying, 100 at a time; at the end deletes every key it stored. Returns the
    /// keys it stored (nil when its own connection failed, with the failure tallied).
    /// A connection the guest closes before any reply (refused at its connection limit
    /// while the idle flood churns: the host back-end accepts first) is opened again, as a
    /// good client's is; SET and DEL are idempotent, so the batch is simply sent again. A
    /// connection that answered and then broke is a failure.
    @discardableResult
    static func keyFlood(port: Int, tag: String, size: Int, stop: StopFlag?, tally: SoakTally?) -> Int? {
        let value = String(repeating: "x", count: size)
        var stored: [Int] = []
        var next = 0
        var client: KVClient? = nil
        var answered = 0
        defer { client?.close() }
        /// Sends `requests` and reads one line per request, reconnecting when the connection
        /// was refused (closed before its first reply).
        func exchange(_ requests: [UInt8], count: Int) throws(KVClientError) -> [String] {
            let deadline = Date().addingTimeInterval(30)
            while true {
                if client == nil {
                    client = try KVClient.connect(port: port, within: 30, timeout: 120)
                    answered = 0
                }
                do throws(KVClientError) {
                    try client!.send(requests)
                    var replies: [String] = []
                    for _ in 0..<count {
                        guard let reply = try client!.readLine() else { throw .closed }
                        replies.append(reply)
                        answered += 1
                    }
                    return replies
                } catch {
                    client?.close()
                    client = nil
                    guard answered == 0, error != .timedOut, Date() < deadline else { throw error }
                    tally?.retried()
                    usleep(200_000)
                }
            }
        }
        do throws(KVClientError) {
            var full = false
            while !(stop?.isSet ?? full) {
                let batch = next..<(next + 100)
                next += 100
                let requests = Array(batch.map { "SET \(tag)\($0) \(value)\n" }.joined().utf8)
                var fullReplies = 0
                for (key, reply) in zip(batch, try exchange(requests, count: batch.count)) {
                    if reply == "OK" { stored.append(key) } else if reply == "ERROR full" { fullReplies += 1; full = true } else {
                        throw .io("SET \(tag)\(key): '\(reply)'")
                    }
                }
                tally?.keys(stored: 100 - fullReplies, full: fullReplies)
                if stop == nil && full { break }
            }
            for chunk in stride(from: 0, to: stored.count, by: 100) {
                let keys = stored[chunk..<min(chunk + 100, stored.count)]
                let replies = try exchange(Array(keys.map { "DEL \(tag)\($0)\n" }.joined().utf8), count: keys.count)
                for (key, reply) in zip(keys, replies) where reply != "DELETED" {
                    throw .io("DEL \(tag)\(key): '\(reply)'")
                }
            }
            _ = try? client?.request("QUIT")
            return stored.count
        } catch {
            tally?.fail("key flood: \(error)")
            return nil
        }
    }

    /// A well-behaved HTTP client: GETs of the soak's files over one kept-alive
    /// connection, every body compared and timed.
    static func webClient(port: Int, index: Int, files: [(path: String, bytes: [UInt8])], stop: StopFlag, tally: SoakTally) {
        var client: WebClient? = nil
        var i = index
        var current = 0
        var retrying = false
        while !stop.isSet {
            if client == nil {
                do throws(KVClientError) { client = try WebClient(port: port) } catch {
                    tally.retried()
                    Thread.sleep(forTimeInterval: 0.2)
                    continue
                }
            }
            if !retrying { current = i % files.count; i += 1 }
            let file = files[current]
            let sent = BackgroundProcess.monotonicNow()
            do throws(KVClientError) {
                let response = try client!.request(file.path)
                let answered = response.status == 200 && response.body == file.bytes
                retrying = false
                tally.good(sent: 1, answered: answered ? 1 : 0, latencies: [BackgroundProcess.monotonicNow() - sent],
                           failure: answered ? nil : "web client \(index): GET \(file.path): status \(response.status), \(response.bodyLength) bytes")
                if response.closes { client?.close(); client = nil }
            } catch {
                client?.close()
                client = nil
                // A GET whose connection closed before the response is sent once more on a
                // new connection (RFC 9110 §9.2.2), counted; a second failure is a failure.
                if !retrying && error != .timedOut {
                    retrying = true
                    tally.retriedRequest()
                    continue
                }
                retrying = false
                tally.good(sent: 1, answered: 0, latencies: [], failure: "web client \(index): GET \(file.path): \(error)")
            }
        }
        client?.close()
    }
}
