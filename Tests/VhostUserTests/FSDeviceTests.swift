// The virtio-fs device over a simulated guest ring (TestSupport's LoopbackQueue):
// FUSE requests in device-readable segments, replies scattered over device-writable ones,
// used lengths, hostile chains; plus the real `toro-fs` binary's command line.
import VirtIO
import Wire
import XCTest
import TestSupport
import Glibc
import Foundation
@testable import VhostUser

final class FSDeviceTests: XCTestCase {
    var top = ""
    var log: LogCapture!
    var loop: LoopbackQueue!
    var ring: DeviceRing!
    var device: FSDevice!
    var interrupts = 0

    override func setUpWithError() throws {
        log = LogCapture()
        top = temporaryDirectory()
        HostFiles.write(top + "/hello.txt", pattern(70_000))
        loop = try LoopbackQueue(size: 16, memorySize: 4 << 20)
        ring = DeviceRing(name: "request", queue: loop.device, memory: loop.memory)
        ring.onInterrupt = { [unowned self] in self.interrupts += 1 }
        device = FSDevice(server: try FUSEServer(root: top, readOnly: false))
        device.attach(ring, index: FSDevice.requestQueue)
    }

    override func tearDown() {
        log.stop()
        HostFiles.removeTree(top)
    }

    /// Posts `request` split into `readable` segment lengths, with writable segments of
    /// `writable` lengths; kicks; returns the used length and the reply bytes.
    func exchange(_ request: [UInt8], readable: [Int]? = nil, writable: [Int]) throws -> (length: UInt32, reply: [UInt8]) {
        var address = loop.bufferArea
        loop.memory.corrupt(at: address, with: request)
        var chain: [(address: UInt64, length: UInt32, deviceWritable: Bool)] = []
        for length in readable ?? [request.count] {
            chain.append((address, UInt32(length), false))
            address += UInt64(length)
        }
        address = (address + 0xFFF) & ~0xFFF
        let replyStart = address
        for length in writable {
            chain.append((address, UInt32(length), true))
            address += UInt64(length) + 64 // gaps: the device must scatter, not copy flat
        }
        _ = try loop.driver.addBuffer(loop.memory, chain: chain)
        try loop.driver.publish(loop.memory)
        device.kicked(index: FSDevice.requestQueue)
        let (_, length) = try XCTUnwrap(try loop.driver.popUsed(loop.memory), "the chain was used")
        var reply: [UInt8] = []
        address = replyStart
        for segment in writable where reply.count < Int(length) {
            reply += loop.memory.bytes(at: address, count: min(segment, Int(length) - reply.count))
            address += UInt64(segment) + 64
        }
        return (length, reply)
    }

    func encode(_ request: FUSERequest, node: UInt64, unique: UInt64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: request.encodedSize)
        _ = try bytes.withUnsafeMutableBytes { try request.encode(into: $0, header: FUSERequestHeader(unique: unique, nodeID: node)) }
        return bytes
    }

    func testRequestWithSplitBuffersGetsTheRightReply() throws {
        let lookup = try encode(.lookup(name: Array("hello.txt".utf8)), node: 1, unique: 5)
        let (length, reply) = try exchange(lookup, readable: [10, 30, lookup.count - 40], writable: [7, 50, 200])
        XCTAssertEqual(Int(length), 16 + FUSEEntry.size)
        let entry = try reply.withUnsafeBytes { try FUSEReply($0, unique: 5).entry() }
        XCTAssertEqual(entry.attributes.size, 70_000)
        XCTAssertGreaterThan(interrupts, 0, "the guest was interrupted")

        let open = try encode(.open(flags: 0), node: entry.nodeID, unique: 6)
        let fh = try exchange(open, writable: [32]).reply.withUnsafeBytes { try FUSEReply($0, unique: 6).open().fileHandle }
        // A READ of 64 KiB into three writable segments.
        let read = try encode(.read(fileHandle: fh, offset: 1000, size: 65536), node: entry.nodeID, unique: 7)
        let (readLength, data) = try exchange(read, writable: [100, 40_000, 30_000])
        XCTAssertEqual(readLength, 16 + 65536)
        let body = try data.withUnsafeBytes { Array(try FUSEReply($0, unique: 7).read(requested: 65536)) }
        XCTAssertEqual(body, Array(pattern(70_000)[1000..<(1000 + 65536)]))
        // A READ larger than the writable space is capped by it.
        let capped = try exchange(read, writable: [16 + 100])
        XCTAssertEqual(capped.length, 116)
    }

    func testLargeWriteAcrossSegments() throws {
        let (entry, opened) = try exchange(try encode(.create(name: Array("big".utf8), flags: UInt32(O_WRONLY), mode: 0o644, umask: 0), node: 1, unique: 1),
                                          writable: [200]).reply.withUnsafeBytes { try FUSEReply($0, unique: 1).create() }
        XCTAssertNotEqual(entry.nodeID, 0)
        let data = pattern(1 << 20, seed: 3)
        var request = [UInt8](repeating: 0, count: 80 + data.count)
        _ = try request.withUnsafeMutableBytes { raw in
            try data.withUnsafeBytes { try FUSERequest.encodeWrite(into: raw, header: FUSERequestHeader(unique: 2, nodeID: entry.nodeID),
                                                                    fileHandle: opened.fileHandle, offset: 0, data: $0) }
        }
        let (length, reply) = try exchange(request, readable: [80, 4096, request.count - 80 - 4096], writable: [24])
        XCTAssertEqual(length, 24)
        XCTAssertEqual(try reply.withUnsafeBytes { try FUSEReply($0, unique: 2).write(requested: UInt32(data.count)) }, UInt32(data.count))
        XCTAssertEqual(HostFiles.read(top + "/big"), data)
    }

    func testForgetOnTheHighPriorityQueueUsesNothing() throws {
        let hiprio = try LoopbackQueue(size: 8, memorySize: 1 << 20)
        let hiRing = DeviceRing(name: "hiprio", queue: hiprio.device, memory: hiprio.memory)
        device.attach(hiRing, index: FSDevice.hiprioQueue)
        let entry = try exchange(try encode(.lookup(name: Array("hello.txt".utf8)), node: 1, unique: 1), writable: [200])
            .reply.withUnsafeBytes { try FUSEReply($0, unique: 1).entry() }
        let nodes = device.server.nodeCount
        let forget = try encode(.forget(lookups: 1), node: entry.nodeID, unique: 2)
        hiprio.memory.corrupt(at: hiprio.bufferArea, with: forget)
        var h = hiprio
        _ = try h.driver.addBuffer(h.memory, address: h.bufferArea, length: UInt32(forget.count), deviceWritable: false)
        try h.driver.publish(h.memory)
        device.kicked(index: FSDevice.hiprioQueue)
        let used = try XCTUnwrap(try h.driver.popUsed(h.memory))
        XCTAssertEqual(used.length, 0)
        XCTAssertEqual(device.server.nodeCount, nodes - 1)
    }

    func testHostileChainIsRefusedWithoutACrash() throws {
        // Readable after writable: built valid, then the flags are swapped in guest memory.
        let request = try encode(.statfs, node: 1, unique: 9)
        loop.memory.corrupt(at: loop.bufferArea, with: request)
        let head = try loop.driver.addBuffer(loop.memory, chain: [(loop.bufferArea, UInt32(request.count), false),
                                                                  (loop.bufferArea + 4096, 200, true)])
        let table = loop.layout.descriptorTable
        let first = table + UInt64(head) * 16
        let second = table + UInt64(loop.memory.load(UInt16.self, at: first + 14)!) * 16
        loop.memory.poke(VirtqueueFormat.flagWrite | VirtqueueFormat.flagNext, at: first + 12)
        loop.memory.poke(UInt16(0), at: second + 12)
        try loop.driver.publish(loop.memory)
        device.kicked(index: FSDevice.requestQueue)
        XCTAssertTrue(ring.isBroken, "the device stops trusting the ring")
        XCTAssertTrue(log.contains("broken by the guest"))
        XCTAssertEqual(loop.memory.load(UInt16.self, at: loop.layout.usedRing + VirtqueueFormat.ringIndex), 0, "nothing was used")
        device.kicked(index: FSDevice.requestQueue) // and nothing more happens
    }

    func testGarbageRequestInAChainIsAnsweredOrDropped() throws {
        let (length, reply) = try exchange([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18], writable: [64])
        XCTAssertEqual(length, 16, "an error header only")
        XCTAssertEqual(reply.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }, -EINVAL)
        XCTAssertFalse(ring.isBroken)
    }

    // MARK: the toro-fs binary

    var binary: String? {
        var path = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &path, 4095)
        guard n > 0 else { return nil }
        var directory = String(cString: path)
        while !directory.isEmpty, directory != "/" {
            directory = (directory as NSString).deletingLastPathComponent
            let candidate = directory + "/toro-fs"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    func run(_ arguments: [String]) throws -> (status: Int32, stderr: String, process: Process) {
        guard let binary else {
            XCTFail("toro-fs is not built next to the tests: run swift build --product toro-fs (./toro test does)")
            throw CancellationError()
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardError = pipe
        try process.run()
        process.waitUntilExit()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, text, process)
    }

    func testBinaryRejectsBadFlagsAndMissingShares() throws {
        let bad = try run(["--socket", top + "/s", "--share", top, "--bogus"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertEqual(bad.stderr.split(separator: "\n").count, 1, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--bogus"))
        let missing = try run(["--socket", top + "/s", "--share", top + "/nope"])
        XCTAssertEqual(missing.status, 66)
        XCTAssertEqual(missing.stderr.split(separator: "\n").count, 1, missing.stderr)
    }

    func testBinaryListensAndStopsOnSIGTERM() throws {
        guard let binary else {
            XCTFail("toro-fs is not built next to the tests: run swift build --product toro-fs (./toro test does)")
            return
        }
        let socket = top + "/fs.sock"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--socket", socket, "--share", top + ":ro"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        var appeared = false
        for _ in 0..<200 where !appeared {
            appeared = HostFiles.exists(socket)
            if !appeared { usleep(20_000) }
        }
        XCTAssertTrue(appeared, "the socket appears")
        // QEMU connecting and leaving ends the run with status 0.
        let client = try unixClient(socket)
        close(client)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertFalse(HostFiles.exists(socket), "the socket is removed on exit")

        let again = Process()
        again.executableURL = URL(fileURLWithPath: binary)
        again.arguments = ["--socket", socket, "--share", top]
        again.standardError = FileHandle.nullDevice
        try again.run()
        for _ in 0..<200 where !HostFiles.exists(socket) { usleep(20_000) }
        again.terminate()
        again.waitUntilExit()
        XCTAssertEqual(again.terminationStatus, 0, "SIGTERM stops it cleanly")
    }
}

final class FSDeviceProtocolFeatureTests: XCTestCase {
    /// QEMU 7.2 warns when a vhost-user-fs back-end offers CONFIG; vsock needs it for the CID.
    func testConfigIsOfferedOnlyByDevicesWithAConfigSpace() throws {
        let fs = VhostUserSession(device: FSDevice(server: try FUSEServer(root: NSTemporaryDirectory(), readOnly: true)))
        XCTAssertEqual(fs.protocolFeatures, VhostUserProtocolFeatures.replyAck)
        let vsock = VhostUserSession(device: VsockDevice(guestCID: 3, udsPath: nil))
        XCTAssertEqual(vsock.protocolFeatures, VhostUserProtocolFeatures.replyAck | VhostUserProtocolFeatures.config)
    }
}
