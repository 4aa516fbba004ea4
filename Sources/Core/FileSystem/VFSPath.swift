// Absolute paths as bytes: parsing, normalisation and the few operations the VFS and the
// back-ends need. Names are compared byte for byte (no `String`: its comparisons pull the
// Unicode tables into the kernel, and file names are not required to be UTF-8 anyway).
//
// Rules (POSIX path resolution, minus symlinks, which the back-end resolves or reports):
//   * a path starts with `/`; empty and relative paths are `invalidPath`;
//   * a NUL byte anywhere is `invalidPath` (it would truncate the name on the wire);
//   * empty components (`//`) and `.` are dropped; `..` removes the previous component,
//     and one at the root is `invalidPath` rather than POSIX's silent clamp, so a service
//     cannot probe above its mount;
//   * a component longer than 255 bytes, or input longer than 4096 bytes, is `nameTooLong`.
// A `VFSPath` value therefore always holds valid, normalised components: back-ends take it
// as given and never re-parse.

public struct VFSPath: Hashable, Sendable {
    /// NAME_MAX: the longest component, in bytes (ext2 and FUSE both cap names here).
    public static let maxComponentLength = 255
    /// PATH_MAX: the longest path accepted, in bytes, before and after normalisation.
    public static let maxLength = 4096

    /// The normalised components, root first; empty for `/`. Each is 1-255 bytes with no
    /// `/`, NUL, `.` or `..`.
    public private(set) var components: [[UInt8]]

    /// The root directory, `/`.
    public static var root: VFSPath { VFSPath(validated: []) }

    init(validated components: [[UInt8]]) {
        self.components = components
    }

    /// Parses and normalises `bytes` (an absolute path, without terminator).
    public init(parsing bytes: [UInt8]) throws(FileSystemError) {
        let slash: UInt8 = 0x2F, dot: UInt8 = 0x2E
        guard bytes.count <= Self.maxLength else { throw .nameTooLong }
        guard bytes.first == slash else { throw .invalidPath }
        var components: [[UInt8]] = []
        var start = 1
        while start <= bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != slash {
                if bytes[end] == 0 { throw .invalidPath }
                end += 1
            }
            let length = end - start
            if length == 0 || (length == 1 && bytes[start] == dot) {
                // `//` or `/./`: nothing to add.
            } else if length == 2 && bytes[start] == dot && bytes[start + 1] == dot {
                if components.isEmpty { throw .invalidPath }
                components.removeLast()
            } else if length > Self.maxComponentLength {
                throw .nameTooLong
            } else {
                components.append(Array(bytes[start..<end]))
            }
            start = end + 1
        }
        self.components = components
    }

    /// Checks one directory-entry name: 1-255 bytes, no `/` or NUL, not `.` or `..`.
    public static func validate(name: [UInt8]) throws(FileSystemError) {
        guard !name.isEmpty, !name.contains(0x2F), !name.contains(0) else { throw .invalidPath }
        if name == [0x2E] || name == [0x2E, 0x2E] { throw .invalidPath }
        guard name.count <= maxComponentLength else { throw .nameTooLong }
    }

    /// True for `/`.
    public var isRoot: Bool { components.isEmpty }

    /// The last component; nil for the root.
    public var name: [UInt8]? { components.last }

    /// The containing directory; nil for the root.
    public var parent: VFSPath? {
        isRoot ? nil : VFSPath(validated: Array(components.dropLast()))
    }

    /// This path with one more component; throws when `name` is not a valid entry name or
    /// the result would exceed `maxLength`.
    public func appending(_ name: [UInt8]) throws(FileSystemError) -> VFSPath {
        try Self.validate(name: name)
        guard byteCount + 1 + name.count <= Self.maxLength else { throw .nameTooLong }
        return VFSPath(validated: components + [name])
    }

    /// True when `other` is this path or one of its ancestors (component-wise, so `/ab`
    /// is not under `/a`).
    public func isWithin(_ other: VFSPath) -> Bool {
        guard other.components.count <= components.count else { return false }
        for index in 0..<other.components.count where components[index] != other.components[index] {
            return false
        }
        return true
    }

    /// This path with the leading `prefix` replaced by `replacement`; the caller checked
    /// `isWithin(prefix)`.
    func replacingPrefix(_ prefix: VFSPath, with replacement: VFSPath) -> VFSPath {
        VFSPath(validated: replacement.components + components.dropFirst(prefix.components.count))
    }

    /// Length of `bytes`, without building it.
    public var byteCount: Int {
        isRoot ? 1 : components.reduce(0) { $0 + 1 + $1.count }
    }

    /// The canonical form: `/` or `/a/b`, no trailing slash.
    public var bytes: [UInt8] {
        if isRoot { return [0x2F] }
        var out: [UInt8] = []
        out.reserveCapacity(byteCount)
        for component in components {
            out.append(0x2F)
            out.append(contentsOf: component)
        }
        return out
    }
}
