// Byte classes from RFC 9110 §5.6 and RFC 3986 §2, and ASCII case folding, for the HTTP
// parser and target decoder. Bytes only: no `String`, no Unicode tables.
public enum HTTPBytes {
    public static let space: UInt8 = 0x20
    public static let tab: UInt8 = 0x09
    public static let cr: UInt8 = 0x0D
    public static let lf: UInt8 = 0x0A
    public static let colon: UInt8 = 0x3A
    public static let comma: UInt8 = 0x2C
    public static let slash: UInt8 = 0x2F
    public static let percent: UInt8 = 0x25
    public static let question: UInt8 = 0x3F
    public static let hash: UInt8 = 0x23
    public static let dot: UInt8 = 0x2E

    /// ASCII lowercase; other bytes unchanged.
    public static func lower(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }

    /// tchar (RFC 9110 §5.6.2): "!#$%&'*+-.^_`|~", digits, letters.
    public static func isTokenChar(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30 ... 0x39, 0x41 ... 0x5A, 0x61 ... 0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }

    /// A byte allowed in a field value (RFC 9110 §5.5): VCHAR, SP, HTAB, obs-text.
    public static func isFieldValueChar(_ byte: UInt8) -> Bool {
        byte == tab || (byte >= 0x20 && byte != 0x7F)
    }

    /// A visible ASCII byte (VCHAR), the only bytes a request-target may hold (RFC 3986 §2).
    public static func isVisible(_ byte: UInt8) -> Bool {
        byte >= 0x21 && byte <= 0x7E
    }

    /// The value of a hex digit, either case, or nil.
    public static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30 ... 0x39: return byte - 0x30
        case 0x41 ... 0x46: return byte - 0x41 + 10
        case 0x61 ... 0x66: return byte - 0x61 + 10
        default: return nil
        }
    }

    /// Whether `bytes` equals the lowercase ASCII `lowercase`, ignoring ASCII case.
    public static func equalsIgnoringCase<C: Collection<UInt8>>(_ bytes: C, _ lowercase: StaticString) -> Bool {
        lowercase.withUTF8Buffer { expected in
            guard bytes.count == expected.count else { return false }
            var index = 0
            for byte in bytes {
                if lower(byte) != expected[index] { return false }
                index += 1
            }
            return true
        }
    }

    /// Whether `bytes` equals `exact`, case included.
    public static func equals<C: Collection<UInt8>>(_ bytes: C, _ exact: StaticString) -> Bool {
        exact.withUTF8Buffer { expected in bytes.elementsEqual(expected) }
    }

    /// `bytes` without leading and trailing SP and HTAB (OWS, RFC 9110 §5.6.3).
    public static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end && (bytes[start] == space || bytes[start] == tab) { start += 1 }
        while end > start && (bytes[end - 1] == space || bytes[end - 1] == tab) { end -= 1 }
        return bytes[start ..< end]
    }
}
