// A recording register bus: the PC chips run over it on the host, and a test asserts the
// exact list of register accesses they made (like VirtIOTests/BringUpTests with its
// recording transport). It is both an `MMIOAccess` (one memory-mapped block, offsets from
// its base) and a `PortAccess` (the whole port space).
//
// Reads return scripted values: `script(_:_:)` queues values for one location (an MMIO
// offset or a port) and a read takes the next one; once a queue is down to its last
// value, that value repeats (a register holding still). A location never scripted
// reads 0, unless `respond` answers for it first (for devices whose reads depend on what
// was written before, like a latched counter).
//
// Rules for callers: a class (one recorder stands for one device, shared by the chip
// value and the test); one test thread. Long polling loops: set `isRecording = false`
// and count with `accessCount` instead of keeping millions of entries.
import PC

public final class RegisterRecorder: MMIOAccess, PortAccess {
    /// One register access, in the order made, with the value read or written.
    public enum Access: Equatable, Sendable, CustomStringConvertible {
        case load32(UInt, UInt32)
        case store32(UInt, UInt32)
        case load16(UInt, UInt16)
        case store16(UInt, UInt16)
        case load8(UInt, UInt8)
        case store8(UInt, UInt8)
        case in8(UInt16, UInt8)
        case out8(UInt16, UInt8)
        case in16(UInt16, UInt16)
        case out16(UInt16, UInt16)
        case in32(UInt16, UInt32)
        case out32(UInt16, UInt32)

        public var description: String {
            func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }
            switch self {
            case .load32(let o, let v): return "load32(\(hex(o))) -> \(hex(v))"
            case .store32(let o, let v): return "store32(\(hex(o)), \(hex(v)))"
            case .load16(let o, let v): return "load16(\(hex(o))) -> \(hex(v))"
            case .store16(let o, let v): return "store16(\(hex(o)), \(hex(v)))"
            case .load8(let o, let v): return "load8(\(hex(o))) -> \(hex(v))"
            case .store8(let o, let v): return "store8(\(hex(o)), \(hex(v)))"
            case .in8(let p, let v): return "in8(\(hex(p))) -> \(hex(v))"
            case .out8(let p, let v): return "out8(\(hex(p)), \(hex(v)))"
            case .in16(let p, let v): return "in16(\(hex(p))) -> \(hex(v))"
            case .out16(let p, let v): return "out16(\(hex(p)), \(hex(v)))"
            case .in32(let p, let v): return "in32(\(hex(p))) -> \(hex(v))"
            case .out32(let p, let v): return "out32(\(hex(p)), \(hex(v)))"
            }
        }

        /// Whether this access reads (a load or an IN).
        public var isRead: Bool {
            switch self {
            case .load32, .load16, .load8, .in8, .in16, .in32: return true
            default: return false
            }
        }
    }

    /// Where a read goes: an offset in the memory-mapped block, or a port.
    public enum Location: Hashable, Sendable {
        case offset(UInt)
        case port(UInt16)
    }

    /// Every access so far (while `isRecording`).
    public private(set) var trace: [Access] = []
    /// Whether accesses are appended to `trace`.
    public var isRecording = true
    /// Every access so far, recorded or not.
    public private(set) var accessCount = 0
    /// Answers a read before the scripts do; nil lets the script (or 0) answer.
    public var respond: ((Location) -> UInt32?)? = nil

    private var scripts: [Location: [UInt32]] = [:]

    public init() {}

    /// Queues `values` for the reads of `location`; the last one repeats.
    public func script(_ location: Location, _ values: [UInt32]) {
        scripts[location, default: []].append(contentsOf: values)
    }

    /// Forgets the trace (not the scripts): for asserting one phase at a time.
    public func clearTrace() { trace.removeAll() }

    private func value(_ location: Location) -> UInt32 {
        if let answer = respond?(location) { return answer }
        guard var queue = scripts[location], let first = queue.first else { return 0 }
        if queue.count > 1 {
            queue.removeFirst()
            scripts[location] = queue
        }
        return first
    }

    private func record(_ access: Access) {
        accessCount += 1
        if isRecording { trace.append(access) }
    }

    // MARK: MMIOAccess

    public func load32(_ offset: UInt) -> UInt32 {
        let v = value(.offset(offset))
        record(.load32(offset, v))
        return v
    }

    public func store32(_ offset: UInt, _ value: UInt32) { record(.store32(offset, value)) }

    public func load16(_ offset: UInt) -> UInt16 {
        let v = UInt16(truncatingIfNeeded: value(.offset(offset)))
        record(.load16(offset, v))
        return v
    }

    public func store16(_ offset: UInt, _ value: UInt16) { record(.store16(offset, value)) }

    public func load8(_ offset: UInt) -> UInt8 {
        let v = UInt8(truncatingIfNeeded: value(.offset(offset)))
        record(.load8(offset, v))
        return v
    }

    public func store8(_ offset: UInt, _ value: UInt8) { record(.store8(offset, value)) }

    // MARK: PortAccess

    public func in8(_ port: UInt16) -> UInt8 {
        let v = UInt8(truncatingIfNeeded: value(.port(port)))
        record(.in8(port, v))
        return v
    }

    public func out8(_ port: UInt16, _ value: UInt8) { record(.out8(port, value)) }

    public func in16(_ port: UInt16) -> UInt16 {
        let v = UInt16(truncatingIfNeeded: value(.port(port)))
        record(.in16(port, v))
        return v
    }

    public func out16(_ port: UInt16, _ value: UInt16) { record(.out16(port, value)) }

    public func in32(_ port: UInt16) -> UInt32 {
        let v = value(.port(port))
        record(.in32(port, v))
        return v
    }

    public func out32(_ port: UInt16, _ value: UInt32) { record(.out32(port, value)) }
}
