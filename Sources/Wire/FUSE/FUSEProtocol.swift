// FUSE wire basics shared by the guest virtio-fs driver and a host FUSE server: opcodes,
// the request and reply headers, the error enum. Fields are read and written with Wire's LittleEndianReader/Writer.
//
// Layouts follow Linux include/uapi/linux/fuse.h at protocol 7.31 (the version virtio-fs
// first shipped with). Everything is packed little-endian:
//
//   fuse_in_header  (40): le32 len, le32 opcode, le64 unique, le64 nodeid,
//                         le32 uid, le32 gid, le32 pid, le16 total_extlen, le16 padding
//   fuse_out_header (16): le32 len, le32 error (0 or -errno), le64 unique
//
// `len` counts the whole message, header included. A request is device-readable bytes (in
// header, fixed body, NUL-terminated names, WRITE data); the reply is device-writable bytes
// (out header, body). The reply side is hostile input (STYLE principle 7): `FUSEReply`
// checks every length, the `unique` and the errno before anything reads a field.

/// FUSE opcodes this implementation speaks (fuse.h `enum fuse_opcode`).
public enum FUSEOpcode: UInt32, Equatable, Sendable {
    case lookup = 1
    case forget = 2
    case getattr = 3
    case setattr = 4
    case mkdir = 9
    case unlink = 10
    case rmdir = 11
    case rename = 12
    case open = 14
    case read = 15
    case write = 16
    case statfs = 17
    case release = 18
    case flush = 25
    case initialize = 26
    case opendir = 27
    case readdir = 28
    case releasedir = 29
    case create = 35
    case readdirplus = 44
    case rename2 = 45
}

/// Why a FUSE request could not be encoded or a reply was refused.
public enum FUSEError: Error, Equatable, Sendable {
    /// The reply is shorter than its out header, or shorter than its header claims.
    case truncated
    /// The reply's `unique` is not the request's: a stale or forged reply.
    case wrongUnique(UInt64)
    /// A length disagrees: header `len` vs bytes received, or a body of the wrong size.
    case badLength
    /// `error` is positive or below -511 (Linux refuses the same range, fs/fuse/dev.c).
    case badErrno(Int32)
    /// The server answered with an error: the positive errno (2 = ENOENT).
    case remote(Int32)
    /// A READDIR/READDIRPLUS stream with a record that does not fit, a bad name or a tail.
    case malformedDirectory
    /// INIT answered with a major other than 7 or a minor below 31.
    case protocolVersion(major: UInt32, minor: UInt32)
    /// The caller's request buffer cannot hold the encoded request.
    case bufferTooSmall
    /// A name to send is empty, longer than 1024 bytes, or contains NUL or '/'.
    case invalidName
}

/// Protocol constants.
public enum FUSE {
    /// The major version we speak; nothing else is accepted.
    public static let major: UInt32 = 7
    /// The minor version we announce and the lowest we accept from the server.
    public static let minor: UInt32 = 31
    /// FUSE_ROOT_ID: the node id of the mount's root directory.
    public static let rootID: UInt64 = 1
    /// FUSE_NAME_MAX in fs/fuse: the longest name either side may send.
    public static let nameMaximum = 1024
    /// The errno range a reply may carry (fs/fuse/dev.c refuses error <= -512).
    public static let errnoMaximum: Int32 = 511
    /// sizeof(fuse_in_header).
    public static let inHeaderSize = 40
    /// sizeof(fuse_out_header).
    public static let outHeaderSize = 16

    /// True when `name` can travel as one path component: 1...1024 bytes, no NUL, no '/'.
    public static func isValidName(_ name: UnsafeRawBufferPointer) -> Bool {
        guard name.count >= 1 && name.count <= nameMaximum else { return false }
        for byte in name where byte == 0 || byte == UInt8(ascii: "/") { return false }
        return true
    }
}

/// The fields of `fuse_in_header` the caller chooses; `len` and `opcode` come from the request.
public struct FUSERequestHeader: Equatable, Sendable {
    /// Matches the reply to the request; the driver picks it and never reuses it in flight.
    public var unique: UInt64
    /// The inode the request acts on (FUSE_ROOT_ID for the root; 0 for INIT).
    public var nodeID: UInt64
    public var uid: UInt32
    public var gid: UInt32
    public var pid: UInt32

    public init(unique: UInt64, nodeID: UInt64, uid: UInt32 = 0, gid: UInt32 = 0, pid: UInt32 = 0) {
        self.unique = unique
        self.nodeID = nodeID
        self.uid = uid
        self.gid = gid
        self.pid = pid
    }
}

extension LittleEndianWriter {
    /// A FUSE name followed by its NUL terminator.
    mutating func name(_ source: UnsafeRawBufferPointer) {
        bytes(source)
        buffer[offset] = 0
        offset += 1
    }
}
