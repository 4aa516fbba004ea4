// Helpers for the Inet* tests: hex frames written by hand, an independent RFC 1071 checksum
// (16-bit words with an end-around carry at every step, unlike the codec's 32-bit sum), and
// decode wrappers that turn typed throws into `Result`.
@testable import Wire

/// Bytes from hex pairs; spaces, newlines and colons are ignored.
func hexBytes(_ text: String) -> [UInt8] {
    let digits = text.filter { $0.isHexDigit }
    precondition(digits.count % 2 == 0, "odd number of hex digits")
    var result: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        result.append(UInt8(digits[index ..< next], radix: 16)!)
        index = next
    }
    return result
}

/// RFC 1071 §4.1's loop, one 16-bit word at a time, folding the carry at once.
func referenceChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var i = 0
    while i < bytes.count {
        let high = UInt32(bytes[i]) << 8
        let low = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
        sum += high | low
        sum = (sum & 0xFFFF) + (sum >> 16)
        i += 2
    }
    return ~UInt16(sum)
}

/// The IPv4 pseudo-header (RFC 9293 §3.1) as bytes, built field by field.
func pseudoHeaderBytes(source: [UInt8], destination: [UInt8], protocol proto: UInt8, length: Int) -> [UInt8] {
    source + destination + [0, proto, UInt8(length >> 8), UInt8(length & 0xFF)]
}

/// Runs a typed-throwing decoder over `bytes`.
func decoding<T, E: Error>(_ bytes: [UInt8], _ decode: (UnsafeRawBufferPointer) throws(E) -> T) -> Result<T, E> {
    bytes.withUnsafeBytes { raw in
        do throws(E) { return .success(try decode(raw)) } catch { return .failure(error) }
    }
}

/// The bytes `encode` writes into a buffer of `count` bytes that starts as `initial`.
func encoding(_ initial: [UInt8], _ encode: (UnsafeMutableRawBufferPointer) -> Void) -> [UInt8] {
    var bytes = initial
    bytes.withUnsafeMutableBytes { encode($0) }
    return bytes
}

extension Result {
    var value: Success? { if case .success(let v) = self { return v } else { return nil } }
    var error: Failure? { if case .failure(let e) = self { return e } else { return nil } }
}

let guestMAC = MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56)
let slirpMAC = MACAddress(0x52, 0x55, 0x0A, 0x00, 0x02, 0x02)
let guestIP = IPv4Address(10, 0, 2, 15)
let gatewayIP = IPv4Address(10, 0, 2, 2)
