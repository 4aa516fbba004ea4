// The VsockDevice fuzz target's steps (main.swift's header gives the format): what the
// guest sends, what the host clients and the service do, and the event-loop turns, on a
// clock the input moves forward.
import FuzzSupport
import Glibc
@testable import VhostUser
@testable import VirtIO
import TestSupport
@testable import Wire

struct Session {
    let device: VsockDevice
    let guest: FuzzGuest
    let service: Int32
    let uds: String
    /// Host-side sockets: hybrid clients and connections the service accepted.
    var clients: [Int32] = []
    /// Seconds added to the monotonic clock.
    var offset: Double = 0

    init(device: VsockDevice, guest: FuzzGuest, service: Int32, uds: String) {
        self.device = device
        self.guest = guest
        self.service = service
        self.uds = uds
    }

    var now: Double { Posix.monotonicNow() + offset }

    static let lines: [[UInt8]] = ["CONNECT 5000\n", "CONNECT 7\n", "CONNECT 99999999999\n", "LISTEN 5\n",
                                   "CONNECT 5000\r\nhello", "", "CONNECT 1"].map { Array($0.utf8) }
    static let rxSizes: [UInt32] = [20, 44, 64, 100, 1000, 4096]

    func port(_ input: inout Cursor) -> UInt32 {
        let b = input.u8()
        switch b & 7 {
        case 0, 1: return 5000
        case 2: return 6000
        case 3, 4, 5: return guest.hostPorts.isEmpty ? 5000 : guest.hostPorts[Int(b >> 3) % guest.hostPorts.count]
        default: return input.u32()
        }
    }

    func packet(_ input: inout Cursor) -> [UInt8] {
        let shape = input.u8()
        let sourceCID: UInt64 = shape & 0x03 == 0x03 ? input.u64() : 3
        let destinationCID: UInt64 = shape & 0x0C == 0x0C ? input.u64() : VsockAddress.hostCID
        let guestPort = shape & 0x10 == 0 ? UInt32(input.u8() & 3) + 1 : input.u32()
        let hostPort = port(&input)
        let opByte = input.u8()
        let op = VsockOp(rawValue: UInt16(opByte % 7) + 1) ?? .rw
        let flags = UInt32(input.u8() & 3)
        let bufAlloc: UInt32 = shape & 0x20 == 0 ? 256 * 1024 : input.u32()
        let fwdCnt: UInt32 = shape & 0x40 == 0 ? 0 : input.u32()
        let payload = op == .rw ? input.take(Int(input.u16() & 0x1FFF)) : []
        let header = VsockHeader(source: VsockAddress(cid: sourceCID, port: guestPort),
                                 destination: VsockAddress(cid: destinationCID, port: hostPort),
                                 op: op, length: UInt32(payload.count), flags: flags, bufAlloc: bufAlloc, fwdCnt: fwdCnt)
        var bytes = [UInt8](repeating: 0, count: VsockHeader.size)
        bytes.withUnsafeMutableBytes { header.encode(into: $0) }
        if shape & 0x80 != 0 {
            // Hostile fields: any length, op or type.
            let field = input.u8() % 3
            let value = input.u32()
            bytes.withUnsafeMutableBytes { raw in
                switch field {
                case 0: raw.storeBytes(of: value.littleEndian, toByteOffset: 24, as: UInt32.self)
                case 1: raw.storeBytes(of: UInt16(truncatingIfNeeded: value).littleEndian, toByteOffset: 30, as: UInt16.self)
                default: raw.storeBytes(of: UInt16(truncatingIfNeeded: value).littleEndian, toByteOffset: 28, as: UInt16.self)
                }
            }
        }
        return bytes + payload
    }

    mutating func step(_ input: inout Cursor) {
        let control = input.u8()
        switch control & 15 {
        case 0, 1, 2:
            guest.send(packet(&input), split: input.u8())
        case 3:
            guest.send(input.take(Int(input.u8())), split: input.u8())
        case 4:
            guest.postRX(1 + Int(input.u8() & 7), size: Session.rxSizes[Int(input.u8()) % Session.rxSizes.count])
        case 5:
            let line = Session.lines[Int(input.u8()) % Session.lines.count]
            guard clients.count < 16, let fd = Posix.connectUnix(path: uds) else { return }
            clients.append(fd)
            if !line.isEmpty { _ = Posix.writeSome(fd, line[...]) }
        case 6:
            guard !clients.isEmpty else { return }
            let fd = clients[Int(input.u8()) % clients.count]
            _ = Posix.writeSome(fd, input.take(Int(input.u16() & 0x3FFF))[...])
        case 7:
            guard !clients.isEmpty else { return }
            let index = Int(input.u8()) % clients.count
            if input.u8() & 1 == 0 {
                Glibc.close(clients.remove(at: index))
            } else {
                shutdown(clients[index], Int32(SHUT_WR))
            }
        case 8:
            var accepted = 0
            while clients.count < 16, accepted < 4, let fd = Posix.accept(service) {
                clients.append(fd)
                accepted += 1
            }
        case 9:
            turn()
        case 10:
            offset += Double(input.u8()) * 0.05
            device.expire(now: now)
        case 11:
            let queue = input.u8() & 1 == 0 ? guest.tx : guest.rx
            queue.memory.poke(input.u16(), at: queue.layout.availRing + VirtqueueFormat.ringIndex)
        default:
            device.kicked(index: VsockDevice.txQueue)
            device.kicked(index: VsockDevice.rxQueue)
            guest.receive()
        }
    }

    /// One event-loop turn without waiting, as VhostUserServer runs it.
    func turn() {
        var entries = device.pollEntries()
        guard poll(&entries, nfds_t(entries.count), 0) > 0 else { return }
        for entry in entries where entry.revents != 0 {
            device.handleEvent(fd: entry.fd, revents: entry.revents, now: now)
        }
        device.expire(now: now)
        guest.receive()
    }

    /// Closes everything this session opened on the host side (the device closes its own).
    mutating func close() {
        for fd in clients { Glibc.close(fd) }
        clients.removeAll()
        Glibc.close(service)
    }
}
