// A simulated guest driver for the vsock device: VirtIO's driver-side SplitVirtqueue over
// TestSupport's fake guest memory, one queue for rx and one for tx, wired to a
// VsockDevice through DeviceRings exactly as the vhost-user session wires real rings.
// Plus captured log lines; the host-socket helpers are in TestSupport.
import Wire
import XCTest
import TestSupport
import Glibc
@testable import VhostUser

let guestCID: UInt64 = 3

/// A packet as the guest sees it.
struct GuestPacket: Equatable {
    var header: VsockHeader
    var payload: [UInt8] = []
}

final class SimulatedGuest {
    var rx: LoopbackQueue
    var tx: LoopbackQueue
    let rxRing: DeviceRing
    let txRing: DeviceRing
    let device: VsockDevice
    var rxBuffers: [UInt16: UInt64] = [:]
    var rxSlot = 0
    var txSlot = 0
    var interrupts = 0
    static let txStride: UInt64 = 80 * 1024
    static let txSlots = 16
    static let rxStride: UInt64 = 8 * 1024

    init(device: VsockDevice, queueSize: UInt16 = 64) throws {
        rx = try LoopbackQueue(size: queueSize, memorySize: 1 << 20)
        tx = try LoopbackQueue(size: queueSize, memorySize: 2 << 20)
        rxRing = DeviceRing(name: "rx", queue: rx.device, memory: rx.memory)
        txRing = DeviceRing(name: "tx", queue: tx.device, memory: tx.memory)
        self.device = device
        rxRing.onInterrupt = { [unowned self] in self.interrupts += 1 }
        device.attach(rxRing, index: VsockDevice.rxQueue)
        device.attach(txRing, index: VsockDevice.txQueue)
    }

    /// Posts `count` rx buffers of `size` bytes and kicks.
    func postRX(_ count: Int, size: UInt32 = 4096) throws {
        for _ in 0..<count {
            let address = rx.bufferArea + UInt64(rxSlot % 96) * SimulatedGuest.rxStride
            rxSlot += 1
            let head = try rx.driver.addBuffer(rx.memory, address: address, length: size, deviceWritable: true)
            rxBuffers[head] = address
        }
        try rx.driver.publish(rx.memory)
        device.kicked(index: VsockDevice.rxQueue)
    }

    /// Sends raw tx bytes as a chain of the given segment lengths (default: one segment).
    func sendBytes(_ bytes: [UInt8], segments: [Int]? = nil) throws {
        let base = tx.bufferArea + UInt64(txSlot % SimulatedGuest.txSlots) * SimulatedGuest.txStride
        txSlot += 1
        tx.memory.corrupt(at: base, with: bytes.isEmpty ? [0] : bytes)
        var chain: [(address: UInt64, length: UInt32, deviceWritable: Bool)] = []
        var offset: UInt64 = 0
        for length in segments ?? [bytes.count] {
            chain.append((base + offset, UInt32(length), false))
            offset += UInt64(length)
        }
        _ = try tx.driver.addBuffer(tx.memory, chain: chain)
        try tx.driver.publish(tx.memory)
        device.kicked(index: VsockDevice.txQueue)
        while try tx.driver.popUsed(tx.memory) != nil {}
    }

    func send(_ op: VsockOp, from guestPort: UInt32, to hostPort: UInt32, payload: [UInt8] = [],
              flags: UInt32 = 0, bufAlloc: UInt32 = 256 * 1024, fwdCnt: UInt32 = 0,
              sourceCID: UInt64 = guestCID, destinationCID: UInt64 = VsockAddress.hostCID) throws {
        let header = VsockHeader(source: VsockAddress(cid: sourceCID, port: guestPort),
                                 destination: VsockAddress(cid: destinationCID, port: hostPort),
                                 op: op, length: UInt32(payload.count), flags: flags, bufAlloc: bufAlloc, fwdCnt: fwdCnt)
        try sendBytes(encode(header) + payload)
    }

    /// Every packet the device has put in rx buffers since the last call.
    func receive() throws -> [GuestPacket] {
        var packets: [GuestPacket] = []
        while let (id, length) = try rx.driver.popUsed(rx.memory) {
            let address = try XCTUnwrap(rxBuffers.removeValue(forKey: id))
            if length == 0 { continue }
            let bytes = rx.memory.bytes(at: address, count: Int(length))
            let header = try bytes.withUnsafeBytes { try VsockHeader.decode($0) }
            XCTAssertEqual(Int(length), VsockHeader.size + Int(header.length), "used length covers header + payload")
            packets.append(GuestPacket(header: header, payload: Array(bytes[VsockHeader.size...])))
        }
        return packets
    }
}

func encode(_ header: VsockHeader) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: VsockHeader.size)
    bytes.withUnsafeMutableBytes { header.encode(into: $0) }
    return bytes
}

/// Captures BackendLog lines for the duration of a test (with a fresh rate limiter, so a
/// line another test logged a moment ago is not suppressed in this one).
final class LogCapture {
    var lines: [String] = []
    init() {
        BackendLog.limiter = LogLimiter()
        BackendLog.capture = { [unowned self] in self.lines.append($0) }
    }
    func stop() { BackendLog.capture = nil }
    func contains(_ text: String) -> Bool { lines.contains { $0.contains(text) } }
}

/// eventfd(2) and memfd_create(2): glibc has them, the Glibc module does not export them.
enum LinuxCalls {
    typealias EventFD = @convention(c) (UInt32, Int32) -> Int32
    typealias MemFD = @convention(c) (UnsafePointer<CChar>, UInt32) -> Int32

    static func symbol<T>(_ name: String, as type: T.Type) -> T {
        let handle = dlopen(nil, RTLD_NOW)
        guard let pointer = dlsym(handle, name) else { fatalError("\(name) not found in libc") }
        return unsafeBitCast(pointer, to: type)
    }

    /// A new eventfd (EFD_NONBLOCK with `nonBlocking`).
    static func eventfd(nonBlocking: Bool = false) -> Int32 {
        symbol("eventfd", as: EventFD.self)(0, nonBlocking ? Int32(O_NONBLOCK) : 0)
    }

    static func memfd(_ name: String) -> Int32 {
        symbol("memfd_create", as: MemFD.self)(name, 0)
    }
}
