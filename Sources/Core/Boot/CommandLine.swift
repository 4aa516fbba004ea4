// The kernel command line: `service=NAME key=value flag ...`, separated by spaces.
//
// QEMU passes `-append` through `hvm_start_info.cmdline_paddr` (PVH) or the Multiboot
// `cmdline` field, and appends its own `virtio_mmio.device=<size>@<base>:<irq>` entries on
// microvm. Entries are kept in order; a key may repeat (virtio_mmio.device does).

public enum CommandLineError: Error, Equatable {
    /// A byte outside printable ASCII (tabs and newlines count as separators).
    case invalidByte(offset: Int)
    /// An entry that starts with `=` (a value without a key).
    case emptyKey(offset: Int)
    /// `service=` given more than once.
    case duplicateService
    /// `service=` with an empty name.
    case emptyService
}

public struct KernelCommandLine: Equatable {
    public struct Entry: Equatable {
        public var key: String
        /// nil for a bare flag (`debug`), "" for `key=`.
        public var value: String?
    }

    public private(set) var entries: [Entry] = []

    /// The service the command line names (`service=`), if any: an image runs one
    /// service, and refuses a command line that names another.
    public var service: String? {
        value("service")
    }

    /// The first value for `key`.
    public func value(_ key: String) -> String? {
        entries.first { KernelCommandLine.same($0.key, key) }?.value
    }

    /// Every value for `key`, in order.
    public func values(_ key: String) -> [String] {
        entries.compactMap { KernelCommandLine.same($0.key, key) ? $0.value : nil }
    }

    /// Byte-wise equality. The command line is ASCII, and `String ==` would pull
    /// Unicode normalisation tables (tens of KiB) into the kernel image.
    static func same(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8)
    }

    public init(parsing bytes: [UInt8]) throws(CommandLineError) {
        var index = 0
        var serviceSeen = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 32 || byte == 9 || byte == 10 || byte == 13 { index += 1; continue }
            let start = index
            var equals: Int? = nil
            while index < bytes.count {
                let b = bytes[index]
                if b == 32 || b == 9 || b == 10 || b == 13 { break }
                guard b > 32 && b < 127 else { throw .invalidByte(offset: index) }
                if b == 61 && equals == nil { equals = index }
                index += 1
            }
            if equals == start { throw .emptyKey(offset: start) }
            let keyEnd = equals ?? index
            let key = String(decoding: bytes[start..<keyEnd], as: UTF8.self)
            let value = equals.map { String(decoding: bytes[($0 + 1)..<index], as: UTF8.self) }
            if KernelCommandLine.same(key, "service") {
                if serviceSeen { throw .duplicateService }
                if value?.utf8.isEmpty ?? true { throw .emptyService }
                serviceSeen = true
            }
            entries.append(Entry(key: key, value: value))
        }
    }
}
