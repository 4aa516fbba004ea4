// libFuzzer target: whole Ethernet frames through every Internet codec in Wire/Inet.
//
// The input is one frame as a NIC would hand it over. It is decoded layer by layer, each
// layer taking the range the one above names: Ethernet, then ARP or IPv4, then ICMP echo or
// TCP with the datagram's addresses. Nothing may trap, whatever the bytes. Every header that
// decodes is encoded again (its payload copied after it) and decoded again, and must come back
// equal (IPv4 and TCP options other than MSS are not re-encoded, so only the header length
// may differ). The Internet checksum of the input must also be the same split anywhere.
// Random bytes almost never carry valid checksums, so the frame is run a second time with
// its IPv4, ICMP and TCP checksums repaired (`repaired`), which takes mutations past the
// checksum checks to the fields and options behind them.
@testable import Wire
import FuzzSupport

private func roundTripTCP(_ segment: UnsafeRawBufferPointer, _ ip: IPv4Header) {
    let tcp: TCPHeader
    do throws(TCPError) { tcp = try TCPHeader.decode(segment, source: ip.source, destination: ip.destination) } catch { return }
    precondition(tcp.headerLength >= 20 && tcp.headerLength <= min(60, segment.count), "TCP header length")
    let data = UnsafeRawBufferPointer(rebasing: segment[tcp.headerLength...])
    var again = [UInt8](repeating: 0, count: tcp.encodedHeaderLength + data.count)
    again.withUnsafeMutableBytes { buffer in
        UnsafeMutableRawBufferPointer(rebasing: buffer[tcp.encodedHeaderLength...]).copyMemory(from: data)
        tcp.encode(into: buffer, source: ip.source, destination: ip.destination)
    }
    let decoded = again.withUnsafeBytes { raw -> TCPHeader? in
        do throws(TCPError) { return try TCPHeader.decode(raw, source: ip.source, destination: ip.destination) } catch { return nil }
    }
    var expected = tcp
    expected.headerLength = tcp.encodedHeaderLength
    precondition(decoded == expected, "TCP round trip")
}

private func roundTripICMP(_ message: UnsafeRawBufferPointer) {
    let echo: ICMPEcho
    do throws(ICMPError) { echo = try ICMPEcho.decode(message) } catch { return }
    var again = [UInt8](message)
    again.withUnsafeMutableBytes { echo.reply.encode(into: $0) }
    let decoded = again.withUnsafeBytes { raw -> ICMPEcho? in
        do throws(ICMPError) { return try ICMPEcho.decode(raw) } catch { return nil }
    }
    precondition(decoded == echo.reply, "ICMP round trip")
}

private func roundTripIPv4(_ packet: UnsafeRawBufferPointer) {
    let ip: IPv4Header
    do throws(IPv4Error) { ip = try IPv4Header.decode(packet) } catch { return }
    precondition(ip.headerLength >= 20 && ip.payloadRange.upperBound <= packet.count, "IPv4 ranges")
    let payload = UnsafeRawBufferPointer(rebasing: packet[ip.payloadRange])
    var again = [UInt8](repeating: 0, count: IPv4Header.size + payload.count)
    again.withUnsafeMutableBytes { buffer in
        UnsafeMutableRawBufferPointer(rebasing: buffer[IPv4Header.size...]).copyMemory(from: payload)
        ip.encode(into: buffer)
    }
    let decoded = again.withUnsafeBytes { raw -> IPv4Header? in
        do throws(IPv4Error) { return try IPv4Header.decode(raw) } catch { return nil }
    }
    var expected = ip
    expected.headerLength = IPv4Header.size
    precondition(decoded == expected, "IPv4 round trip")
    if ip.proto == .tcp { roundTripTCP(payload, ip) }
    if ip.proto == .icmp { roundTripICMP(payload) }
}

private func roundTripARP(_ bytes: UnsafeRawBufferPointer) {
    let arp: ARPPacket
    do throws(ARPError) { arp = try ARPPacket.decode(bytes) } catch { return }
    var again = [UInt8](repeating: 0, count: ARPPacket.size)
    again.withUnsafeMutableBytes { arp.encode(into: $0) }
    let decoded = again.withUnsafeBytes { raw -> ARPPacket? in
        do throws(ARPError) { return try ARPPacket.decode(raw) } catch { return nil }
    }
    precondition(decoded == arp, "ARP round trip")
}

/// `frame` with the checksums an Ethernet/IPv4 frame would carry recomputed wherever the
/// lengths it claims fit in it; other bytes are left alone.
private func repaired(_ frame: UnsafeRawBufferPointer) -> [UInt8] {
    var bytes = [UInt8](frame)
    let ip = EthernetHeader.size
    guard bytes.count >= ip + IPv4Header.size else { return bytes }
    let headerLength = Int(bytes[ip] & 0x0F) * 4
    let total = Int(bytes[ip + 2]) << 8 | Int(bytes[ip + 3])
    guard headerLength >= IPv4Header.size, total >= headerLength, ip + total <= bytes.count else { return bytes }
    bytes.withUnsafeMutableBytes { buffer in
        BigEndian.store(UInt16(0), into: buffer, at: ip + 10)
        let sum = InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: buffer[ip ..< ip + headerLength]))
        BigEndian.store(sum, into: buffer, at: ip + 10)
        let payload = UnsafeMutableRawBufferPointer(rebasing: buffer[ip + headerLength ..< ip + total])
        if buffer[ip + 9] == IPProtocol.icmp.rawValue && payload.count >= ICMPEcho.headerSize {
            BigEndian.store(UInt16(0), into: payload, at: 2)
            BigEndian.store(InternetChecksum.checksum(UnsafeRawBufferPointer(payload)), into: payload, at: 2)
        }
        if buffer[ip + 9] == IPProtocol.tcp.rawValue && payload.count >= TCPHeader.minimumSize {
            BigEndian.store(UInt16(0), into: payload, at: 16)
            var sum = InternetChecksum.pseudoHeader(
                source: IPv4Address(rawValue: BigEndian.load(UInt32.self, from: UnsafeRawBufferPointer(buffer), at: ip + 12)),
                destination: IPv4Address(rawValue: BigEndian.load(UInt32.self, from: UnsafeRawBufferPointer(buffer), at: ip + 16)),
                protocol: .tcp, length: UInt16(payload.count))
            sum.add(UnsafeRawBufferPointer(payload))
            BigEndian.store(sum.value, into: payload, at: 16)
        }
    }
    return bytes
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    check(input)
    repaired(input).withUnsafeBytes { check($0) }
    return 0
}

private func check(_ frame: UnsafeRawBufferPointer) {
    let size = frame.count

    let whole = InternetChecksum.checksum(frame)
    let split = size == 0 ? 0 : Int(frame[0]) % (size + 1)
    var parts = InternetChecksum()
    parts.add(UnsafeRawBufferPointer(rebasing: frame[..<split]))
    parts.add(UnsafeRawBufferPointer(rebasing: frame[split...]))
    precondition(parts.value == whole, "checksum depends on the split")

    // Every layer also sees the raw input, so each is fuzzed without a valid layer above it.
    roundTripIPv4(frame)
    roundTripARP(frame)
    roundTripICMP(frame)
    roundTripTCP(frame, IPv4Header(source: IPv4Address(10, 0, 2, 2), destination: IPv4Address(10, 0, 2, 15),
                                   protocol: .tcp, payloadLength: 0))

    let ethernet: EthernetHeader
    do throws(EthernetError) { ethernet = try EthernetHeader.decode(frame) } catch { return }
    var header = [UInt8](repeating: 0, count: EthernetHeader.size)
    header.withUnsafeMutableBytes { ethernet.encode(into: $0) }
    precondition(header.elementsEqual(frame[..<EthernetHeader.size]), "Ethernet round trip")
    let payload = UnsafeRawBufferPointer(rebasing: frame[EthernetHeader.size...])
    if ethernet.etherType == .arp { roundTripARP(payload) }
    if ethernet.etherType == .ipv4 { roundTripIPv4(payload) }
}

fuzzMain(fuzz)
