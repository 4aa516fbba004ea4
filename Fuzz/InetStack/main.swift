// libFuzzer target: whole Ethernet frames through Toro's TCP/IP stack (NetInterface, ARP,
// IPv4, ICMP, TCPStack, TCPConnection), with a listening port, an active connection, a
// service reading, writing and closing, and time moving, all driven by the input.
//
// The input is a list of operations. Most of them are frames: raw bytes as a NIC would
// hand them over, or a TCP segment from the peer whose fields (sequence and acknowledgment
// near the connection's, flags, window, MSS, data) come from the input, wrapped in IPv4 and
// Ethernet with valid checksums so it reaches the state machine. The rest advance the
// virtual clock (timers: retransmission, persist, delayed ACK, TIME-WAIT, ARP) or act as
// the service. Nothing may trap, and after every operation:
//   * every frame the stack sent is 14-1514 bytes and decodes as Ethernet, then ARP or an
//     IPv4 datagram with a valid checksum, and a TCP segment inside verifies;
//   * the connection table stays within its bound and every connection's buffers within
//     their capacities.
import Core
import FuzzSupport
import Inet
import Wire

private let ourMAC = MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56)
private let peerMAC = MACAddress(0x52, 0x55, 0x0A, 0x00, 0x02, 0x02)
private let ourAddress = IPv4Address(10, 0, 2, 15)
private let peerAddress = IPv4Address(10, 0, 2, 2)

/// Every frame the stack sends must decode.
private func checkSent(_ frame: UnsafeRawBufferPointer) {
    precondition(frame.count >= EthernetHeader.size && frame.count <= 1514, "frame size")
    let ethernet: EthernetHeader
    do throws(EthernetError) { ethernet = try EthernetHeader.decode(frame) } catch { preconditionFailure("Ethernet") }
    let payload = UnsafeRawBufferPointer(rebasing: frame[EthernetHeader.size...])
    if ethernet.etherType == .arp {
        do throws(ARPError) { _ = try ARPPacket.decode(payload) } catch { preconditionFailure("ARP") }
        return
    }
    precondition(ethernet.etherType == .ipv4, "EtherType")
    let ip: IPv4Header
    do throws(IPv4Error) { ip = try IPv4Header.decode(payload) } catch { preconditionFailure("IPv4") }
    precondition(ip.source == ourAddress, "source address")
    if ip.proto == .tcp {
        let segment = UnsafeRawBufferPointer(rebasing: payload[ip.payloadRange])
        do throws(TCPError) { _ = try TCPHeader.decode(segment, source: ip.source, destination: ip.destination) } catch {
            preconditionFailure("TCP")
        }
    }
}

/// A frame carrying one TCP segment from the peer.
private func segmentFrame(_ header: TCPHeader, data: [UInt8]) -> [UInt8] {
    let tcpLength = header.encodedHeaderLength + data.count
    let ip = IPv4Header(source: peerAddress, destination: ourAddress, protocol: .tcp, payloadLength: tcpLength)
    var frame = [UInt8](repeating: 0, count: EthernetHeader.size + IPv4Header.size + tcpLength)
    frame.withUnsafeMutableBytes { raw in
        EthernetHeader(destination: ourMAC, source: peerMAC, etherType: .ipv4).encode(into: raw)
        ip.encode(into: UnsafeMutableRawBufferPointer(rebasing: raw[EthernetHeader.size...]))
        let segment = UnsafeMutableRawBufferPointer(rebasing: raw[(EthernetHeader.size + IPv4Header.size)...])
        for (i, byte) in data.enumerated() { segment[header.encodedHeaderLength + i] = byte }
        header.encode(into: segment, source: peerAddress, destination: ourAddress)
    }
    return frame
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var input = Cursor(bytes: UnsafeRawBufferPointer(start: data, count: size))
    var budget = Int(input.u8() % 64) + 1          // transmit ring slots before it "fills"
    let interface = NetInterface(mac: ourMAC, configuration: .userNetworking) { frame in
        checkSent(frame)
        if budget == 0 { return false }
        budget -= 1
        return true
    }
    let stack = TCPStack(output: interface, secret: 0x5EED, maximumConnections: 16, maximumTimeWait: 4)
    interface.transport = stack
    let passive = stack.listen(port: 80, maximumHalfOpen: 4)!
    var now: UInt64 = 1_000_000_000
    var accepted: [TCPConnection] = []
    let active = stack.connect(to: TCPEndpoint(peerAddress, 1234), now: now)
    var scratch = [UInt8](repeating: 0, count: 4096)
    var operations = 0
    while !input.isEmpty && operations < 512 {
        operations += 1
        switch input.u8() % 8 {
        case 0:                                     // raw bytes as a frame
            let frame = input.take(Int(input.u16() % 1515))
            frame.withUnsafeBytes { interface.receive(frame: $0, now: now) }
        case 1, 2, 3:                               // a TCP segment near a connection's numbers
            let target = Int(input.u8())
            let known = accepted + (active.map { [$0] } ?? [])
            let connection = known.isEmpty ? nil : known[target % known.count]
            let port: UInt16 = target & 0x80 != 0 ? UInt16(40000 + target % 4) : connection?.remote.port ?? 40000
            let localPort: UInt16 = target & 0x40 != 0 ? 80 : connection?.local.port ?? 80
            let sequence = (connection?.rcvNxt.rawValue ?? 0) &+ UInt32(truncatingIfNeeded: Int32(Int16(bitPattern: input.u16())))
            let ack = (connection?.sndNxt.rawValue ?? 0) &+ UInt32(truncatingIfNeeded: Int32(Int16(bitPattern: input.u16())))
            let flags = TCPFlags(rawValue: input.u8())
            let window = input.u16()
            let mss: UInt16? = input.u8() & 1 != 0 ? input.u16() : nil
            let header = TCPHeader(sourcePort: port, destinationPort: localPort, sequenceNumber: sequence,
                                   acknowledgmentNumber: ack, flags: flags, window: window, maximumSegmentSize: mss)
            let frame = segmentFrame(header, data: input.take(Int(input.u16() % 1461)))
            frame.withUnsafeBytes { interface.receive(frame: $0, now: now) }
        case 4:                                     // time passes
            now += UInt64(input.u32() % 5_000_000) * 1000
            budget += Int(input.u8() % 16)
            interface.tick(now: now)
        case 5:                                     // the service reads and writes
            while let connection = passive.takeEstablished() { accepted.append(connection) }
            for connection in accepted + (active.map { [$0] } ?? []) {
                _ = scratch.withUnsafeMutableBytes { connection.read(into: $0, now: now) }
                let count = Int(input.u16() % 4096)
                _ = scratch[0 ..< count].withUnsafeBytes { connection.write($0, now: now) }
            }
        case 6:                                     // the service closes or aborts one
            guard !accepted.isEmpty else { break }
            let index = Int(input.u8()) % accepted.count
            if input.u8() & 1 == 0 { accepted[index].close(now: now) } else { accepted[index].abort(now: now) }
            accepted.remove(at: index)
        default:                                    // an ARP request from the peer
            var frame = [UInt8](repeating: 0, count: EthernetHeader.size + ARPPacket.size)
            frame.withUnsafeMutableBytes { raw in
                EthernetHeader(destination: .broadcast, source: peerMAC, etherType: .arp).encode(into: raw)
                ARPPacket.request(from: peerMAC, address: peerAddress, asking: ourAddress)
                    .encode(into: UnsafeMutableRawBufferPointer(rebasing: raw[EthernetHeader.size...]))
            }
            frame.withUnsafeBytes { interface.receive(frame: $0, now: now) }
        }
        precondition(stack.connectionCount <= 16 + 1, "connection table bound")
        for connection in accepted {
            precondition(connection.bufferBytes <= TCPLimits.receiveCapacity + TCPLimits.sendCapacity, "buffer bound")
        }
    }
    interface.transport = nil                       // the interface and its transport hold each other
    return 0
}

fuzzMain(fuzz)
