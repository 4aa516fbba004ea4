// kv's shared state: the table, the folder it persists to, and the lock that keeps a SAVE
// one consistent table (the concurrency rules are in the kv service's header,
// Applications/kv/kv.swift), and the bounds read from the kernel arguments.
import Core
import KVProtocol

public final class KVShared {
    public var table: KVTable
    public let fileSystem: (any FileSystem)?
    /// Held by a SAVE for its whole run, and by SET/DEL around their change (see above).
    public let saving = SleepLock()

    public init(fileSystem: (any FileSystem)?, limits: KVLimits = .unlimited) {
        self.fileSystem = fileSystem
        table = KVTable(limits: limits, admit: { MemoryBudget.admit($0, for: $1) })
    }

    /// Handles one request line; returns the reply and whether the client asked to quit.
    public func handle(_ line: ArraySlice<UInt8>) -> (reply: [UInt8], quit: Bool) {
        let request = KVRequest(parsing: line)
        switch request {
        case .save:
            return (save(), false)
        case .set, .delete:
            saving.acquire()
            defer { saving.release() }
            return table.apply(request)
        default:
            return table.apply(request)
        }
    }

    /// SAVE: the reply line.
    public func save() -> [UInt8] {
        guard let fileSystem else { return KVTable.reply("ERROR no shared folder") }
        saving.acquire()
        defer { saving.release() }
        guard MemoryBudget.admit(KVFile.chunkSize, for: "a kv save") else { return KVTable.reply("ERROR out of memory") }
        do throws(FileSystemError) {
            try KVFile.save(table.entries, to: fileSystem)
        } catch {
            return KVTable.error(error.reason)
        }
        return KVTable.reply("OK")
    }

    /// Loads `kv.db` when there is a shared folder, and says what happened in one line.
    public func load() {
        guard let fileSystem else { return }
        let outcome = KVFile.load(from: fileSystem, limits: table.limits) { MemoryBudget.admit($0, for: "kv.db") }
        switch outcome {
        case .absent:
            Log.write("kv: no kv.db in the shared folder; starting empty\n")
        case .loaded(let entries, let bytes):
            table.replace(with: entries, bytes: bytes)
            Log.write("kv: loaded ")
            Log.decimal(entries.count)
            Log.write(entries.count == 1 ? " key from kv.db\n" : " keys from kv.db\n")
        case .corrupt(let corruption):
            Log.write("kv: kv.db is corrupt (")
            Log.write(corruption.reason)
            Log.write("); starting empty\n")
        case .refused(let refusal):
            Log.write("kv: kv.db holds ")
            Log.decimal(refusal.keys)
            Log.write(refusal.keys == 1 ? " key costing " : " keys costing ")
            Log.decimal(refusal.bytes)
            switch refusal.bound {
            case .keys:
                Log.write(" bytes, over kv-keys=")
                Log.decimal(table.limits.keys)
            case .bytes:
                Log.write(" bytes, over kv-bytes=")
                Log.decimal(table.limits.bytes)
            case .memory:
                Log.write(" bytes, more than free memory allows")
            }
            Log.write("; starting empty, kv.db left as it is\n")
        case .failed(let error):
            Log.write("kv: cannot read kv.db (")
            Log.write(error.reason)
            Log.write("); starting empty\n")
        }
    }

    /// Logs the heap figures (ConnectionServer calls it whenever the last client has gone).
    public func logHeap() {
        KernelMemory.drainRemoteFrees()
        Kernel.logHeap("kv: idle, heap", KernelMemory.statistics())
        Log.write(", ")
        Log.decimal(table.count)
        Log.write(" keys\n")
    }
}

extension KVLimits {
    /// The bounds of `kv-keys` and the least `kv-bytes`.
    public static let keysRange = 1...(1 << 24)
    public static let minimumBytes = 1024

    /// The defaults for this machine's memory (see KV.swift's header).
    public static var defaults: KVLimits {
        KVLimits(keys: MemoryBudget.share(denominator: 4, perItem: 256, minimum: 1024, maximum: keysRange.upperBound),
                 bytes: MemoryBudget.share(denominator: 4, perItem: 1, minimum: 1 << 20))
    }

    /// `kv-keys=` and `kv-bytes=`, defaults for what is not given.
    public init(commandLine: KernelCommandLine) throws(KernelArgumentError) {
        let defaults = Self.defaults
        let keys = try commandLine.number("kv-keys", minimum: Self.keysRange.lowerBound, maximum: Self.keysRange.upperBound)
        let bytes = try commandLine.number("kv-bytes", minimum: Self.minimumBytes, maximum: 1 << 40)
        self.init(keys: keys ?? defaults.keys, bytes: bytes ?? defaults.bytes)
    }
}

