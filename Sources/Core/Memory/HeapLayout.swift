// How the heap lays out blocks, slabs and page runs in RAM, and how a bare pointer is
// decoded back to its block (CPUHeap's `free(pointer)` has nothing else to go on).
//
// Every allocation: a 16-byte `BlockHeader` right before the payload (tag: state, owner
// CPU, size class, offset back to its slab or page run; and the requested size).
// Payloads are 16-aligned at least; a larger alignment puts padding between the start of
// the block and the header.
//
//   * Small requests (16 + worst-case padding + payload <= 8 KiB): a block of one of 31
//     size classes (32, 48, ... 128 bytes, then four steps per power of two up to 8192).
//     A slab is 1 to 9 page-aligned pages: a 64-byte `SlabHeader`, then equal blocks.
//     A free block's free-list link is at block + 8, clear of the tag of a header at
//     the block's start, so a double free still finds a "free" tag.
//   * Large requests: a page run with a 16-byte `LargeRecord` (page count) at its start,
//     then padding, header and payload.
//
// Rules for callers: decoding reads the 16 bytes before the pointer and the slab or run
// start they point back to, so it refuses garbage but can fault on an unmapped pointer.
// The structs are plain values bound onto RAM; only the owner CPU writes them, except a
// header's tag, which a CPU returning a remote free also writes (CPUHeap.acceptRemoteFree).

/// The size classes: block sizes including the 16-byte header.
enum SizeClass {
    static let count = 31
    static let largestBlock = 8192
    static let slabHeaderBytes = 64

    /// The smallest class whose blocks hold `bytes` (1...largestBlock).
    static func index(forBlockBytes bytes: Int) -> Int {
        if bytes <= 128 { return max(0, (bytes + 15) / 16 - 2) }
        let exponent = Int.bitWidth - 1 - (bytes - 1).leadingZeroBitCount  // 2^e < bytes <= 2^(e+1)
        let step = 1 << (exponent - 2)
        return 7 + (exponent - 7) * 4 + ((bytes - (1 << exponent)) + step - 1) / step - 1
    }

    static func blockBytes(_ index: Int) -> Int {
        if index < 7 { return 32 + 16 * index }
        let exponent = 7 + (index - 7) / 4
        return (1 << exponent) + (((index - 7) % 4 + 1) << (exponent - 2))
    }

    /// Pages per slab: the fewest that hold at least 4 blocks with at most 1/8 of the
    /// slab wasted (the header and the tail too small for a block). A switch, not a
    /// table: a Swift array would need the heap. HeapTests checks the rule.
    static func slabPages(_ index: Int) -> Int {
        switch index {
        case ...17: return 1
        case 18...21: return 2
        case 22...25: return 4
        case 27: return 7
        case 26, 28, 29: return 8
        default: return 9
        }
    }

    static func blocksPerSlab(_ index: Int) -> Int {
        (slabPages(index) * 4096 - slabHeaderBytes) / blockBytes(index)
    }
}

/// The 16 bytes before every payload.
struct BlockHeader {
    /// state(16) << 48 | owner CPU(8) << 40 | class(8) << 32 | offset(32): the header's
    /// distance from its slab start (small) or from its page run start (large).
    var tag: UInt64
    /// The size the caller asked for.
    var size: UInt64

    static let live: UInt64 = 0xA11C
    static let free: UInt64 = 0xF4EE
    static let remote: UInt64 = 0x4E30
    static let largeClass = 0xFF

    static func tag(_ state: UInt64, cpu: Int, sizeClass: Int, offset: UInt64) -> UInt64 {
        state << 48 | UInt64(cpu) << 40 | UInt64(sizeClass) << 32 | offset
    }
}

/// At the start of each slab. Written only by the owner CPU, except `tag` (constant).
struct SlabHeader {
    static let magic: UInt64 = 0x534C_4142 << 32  // "SLAB"
    /// magic | cpu << 8 | class.
    var tag: UInt64
    var next: UInt64
    var previous: UInt64
    /// First free block (its link is at block + 8); 0 when none.
    var freeList: UInt64
    /// First never-used block; the end of the blocks when all have been used.
    var bump: UInt64
    var live: Int
    var onPartialList: Bool
}

/// At the start of each large page run.
struct LargeRecord {
    static let magic: UInt64 = 0x4C41_5247 << 32  // "LARG"
    /// magic | cpu << 8.
    var tag: UInt64
    var pages: UInt64
}

/// A validated live (or remote-pending) block, decoded from its header.
struct BlockInfo {
    var header: UnsafeMutablePointer<BlockHeader>
    var payload: UInt64
    var owner: Int
    var sizeClass: Int
    /// The slab (small) or page run (large) holding the block.
    var container: UInt64
    /// Where the block starts (small) or the page run starts (large).
    var blockStart: UInt64
    /// Bytes from the payload to the end of the block or page run.
    var capacity: Int
    var size: Int
    var isLarge: Bool { sizeClass == BlockHeader.largeClass }
}

extension BlockHeader {
    /// The header of the block whose payload starts at `payload`.
    static func before(_ payload: UInt64) -> UnsafeMutablePointer<BlockHeader> {
        UnsafeMutablePointer<BlockHeader>(bitPattern: UInt(payload - 16))!
    }
}

extension SlabHeader {
    static func at(_ address: UInt64) -> UnsafeMutablePointer<SlabHeader> {
        UnsafeMutablePointer<SlabHeader>(bitPattern: UInt(address))!
    }

    /// Reads only the tag: another CPU decoding a block must not read the fields the
    /// owner is writing (an access to `pointee` as a whole would).
    static func tag(at address: UInt64) -> UInt64 {
        UnsafeRawPointer(bitPattern: UInt(address))!.load(as: UInt64.self)
    }
}

extension LargeRecord {
    static func at(_ address: UInt64) -> UnsafeMutablePointer<LargeRecord> {
        UnsafeMutablePointer<LargeRecord>(bitPattern: UInt(address))!
    }
}

extension BlockInfo {
    /// Decodes and checks the header before `pointer`: tag state, owner, class, and that
    /// the slab or page run it points back to agrees. Safe to call from any CPU.
    init?(decoding pointer: UnsafeMutableRawPointer, state expected: UInt64 = BlockHeader.live) {
        let payload = UInt64(UInt(bitPattern: pointer))
        guard payload & 15 == 0, payload >= 4096 + 32 else { return nil }
        let header = BlockHeader.before(payload)
        let tag = header.pointee.tag
        guard tag >> 48 == expected else { return nil }
        let owner = Int((tag >> 40) & 0xFF)
        let sizeClass = Int((tag >> 32) & 0xFF)
        let offset = tag & 0xFFFF_FFFF
        let size = header.pointee.size
        guard offset <= payload - 16, size <= UInt64(CPUHeap.maximumSize) else { return nil }
        let container = payload - 16 - offset
        guard container & 4095 == 0 else { return nil }
        if sizeClass == BlockHeader.largeClass {
            let record = LargeRecord.at(container).pointee
            guard offset >= 16, record.tag == LargeRecord.magic | UInt64(owner) << 8, record.pages > 0,
                  record.pages <= (UInt64.max - container) / 4096 else { return nil }
            let end = container + record.pages * 4096
            guard payload + max(size, 16) <= end else { return nil }
            self.init(header: header, payload: payload, owner: owner, sizeClass: sizeClass,
                      container: container, blockStart: container,
                      capacity: Int(end - payload), size: Int(size))
            return
        }
        guard sizeClass < SizeClass.count,
              SlabHeader.tag(at: container) == SlabHeader.magic | UInt64(owner) << 8 | UInt64(sizeClass)
        else { return nil }
        let blockBytes = UInt64(SizeClass.blockBytes(sizeClass))
        let first = UInt64(SizeClass.slabHeaderBytes)
        guard offset >= first, offset < first + UInt64(SizeClass.blocksPerSlab(sizeClass)) * blockBytes
        else { return nil }
        let blockStart = container + first + (offset - first) / blockBytes * blockBytes
        let blockEnd = blockStart + blockBytes
        guard payload + max(size, 16) <= blockEnd else { return nil }
        self.init(header: header, payload: payload, owner: owner, sizeClass: sizeClass,
                  container: container, blockStart: blockStart,
                  capacity: Int(blockEnd - payload), size: Int(size))
    }
}
