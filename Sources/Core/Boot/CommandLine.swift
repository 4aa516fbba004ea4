// The kernel command line: `service=NAME key=value flag ...`, separated by spaces.
//
// QEMU passes `-append` through `hvm_start_info.cmdline_paddr` (PVH) or the Multiboot
// `cmdline` field, and appends its own `virtio_mmio.device=<size>@<base>:<irq>` entries on
// microvm. Entries are kept in order; a key may repeat (virtio_mmio.device does).
//
// Keys and values stay bytes (the parser admits printable ASCII only), and callers name
// keys with static strings: a `String` here would pull the standard library's UTF-8
// validation, index and breadcrumb code (about 10 KiB) into every image, and `String ==`
// its Unicode normalisation tables.

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
        public var key: [UInt8]
        /// nil for a bare flag (`debug`), empty for `key=`.
        public var value: [UInt8]?

        public init(key: [UInt8], value: [UInt8]?) {
            self.key = key
            self.value = value
        }
    }

    public private(set) var entries: [Entry] = []

    /// The service the command line names (`service=`), if any: an image runs one
    /// service, and refuses a command line that names another.
    public var service: [UInt8]? {
        value("service")
    }

    /// The first value for `key`.
    public func value(_ key: StaticString) -> [UInt8]? {
        entry(key)?.value
    }

    /// Every value for `key`, in order.
    public func values(_ key: StaticString) -> [[UInt8]] {
        entries.compactMap { KernelCommandLine.same($0.key, key) ? $0.value : nil }
    }

    /// The first entry for `key` (a bare flag too: its value is nil).
    public func entry(_ key: StaticString) -> Entry? {
        entries.first { KernelCommandLine.same($0.key, key) }
    }

    /// Whether `bytes` spell `text`.
    static func same(_ bytes: [UInt8], _ text: StaticString) -> Bool {
        text.withUTF8Buffer { bytes.elementsEqual($0) }
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
            let key = Array(bytes[start..<keyEnd])
            let value = equals.map { Array(bytes[($0 + 1)..<index]) }
            if KernelCommandLine.same(key, "service") {
                if serviceSeen { throw .duplicateService }
                if value?.isEmpty ?? true { throw .emptyService }
                serviceSeen = true
            }
            entries.append(Entry(key: key, value: value))
        }
    }
}

extension Service {
    /// Whether `name` (the kernel command line's `service=`) names this service.
    public func isNamed(_ name: [UInt8]) -> Bool {
        self.name.withUTF8Buffer { name.elementsEqual($0) }
    }
}

extension Log {
    /// Writes command-line bytes (printable ASCII, as the parser admits them).
    @inline(never)
    public static func write(_ bytes: [UInt8]) {
        for byte in bytes { put(byte) }
    }
}
