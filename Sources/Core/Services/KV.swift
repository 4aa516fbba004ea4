// `kv` (Toro's HashTableServer): a key-value server on a socket port (80 unless
// `port=N`), one thread per client (ConnectionServer.swift), the line protocol in
// KVProtocol.swift, lines of at most 1024 bytes (a longer line gets `ERROR line too long`
// and the connection goes on).
//
// Limits (kernel arguments; KVLimits.swift says how an entry is counted):
//   kv-keys=N    the most keys the table holds, 1...16,777,216; default: a quarter of
//                memory / 256 bytes, at least 1,024 (64,804 keys at 64 MiB)
//   kv-bytes=N   what the entries may cost together (key + value + 128 each), at least
//                1,024; default: a quarter of memory, at least 1 MiB (16,589,824 bytes at
//                64 MiB; "memory" is what the page allocator manages, a little under --memory)
// A bad value is one line (`kv: kernel argument kv-keys must be between ...`) and status 2
// (.badCommandLine). A SET past either bound, or one that MemoryBudget does not admit,
// gets `ERROR full` and changes nothing; the server goes on answering everything else, and
// a DEL makes room. The start-up line `kv: limits K keys, B bytes` gives the figures.
//
// Persistence: with a shared folder (`--share DIR`), the table is loaded at start from
// `kv.db` (format in KVFile.swift) and `SAVE` writes it back (KVFileIO.swift), both streamed
// through one 16 KiB buffer (SAVE asks MemoryBudget for it: `ERROR out of memory` if
// refused). One line says what was loaded (`kv: loaded N keys from kv.db`); a corrupt file
// gives `kv: kv.db is corrupt (<reason>); starting empty`; a file the table cannot hold
// gives `kv: kv.db holds N keys costing B bytes, over kv-keys=K` (or `over kv-bytes=L`, or
// `more than free memory allows`) `; starting empty, kv.db left as it is`. That refusal
// comes from the header and the file's size, before anything is allocated, and reading
// stops there. Nothing is ever a trap, and loading never writes the file; a later SAVE
// replaces it, as it replaces any kv.db.
//
// Concurrency: the client threads all run on CPU 0 with the socket device, and the
// scheduler is cooperative, so GET/SET/DEL need no lock among themselves. SAVE blocks on
// the file system, and other client threads run meanwhile, so:
//   * one save at a time: `saving` (a SleepLock) is held for the whole save; a second
//     SAVE waits for the first to finish, then writes the table as it is then (both get
//     OK), so two saves never interleave in `kv.db.tmp`;
//   * the file is one consistent table: SET and DEL take the same lock, so they wait while
//     a save streams the dictionary (the encoder iterates it in place; a change meanwhile
//     would invalidate its position or copy the whole table). GET, QUIT and errors never
//     wait.

final class KVShared {
    var table: KVTable
    let fileSystem: (any FileSystem)?
    /// Held by a SAVE for its whole run, and by SET/DEL around their change (see above).
    let saving = SleepLock()

    init(fileSystem: (any FileSystem)?, limits: KVLimits = .unlimited) {
        self.fileSystem = fileSystem
        table = KVTable(limits: limits)
    }

    /// Handles one request line; returns the reply and whether the client asked to quit.
    func handle(_ line: ArraySlice<UInt8>) -> (reply: [UInt8], quit: Bool) {
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
    func save() -> [UInt8] {
        guard let fileSystem else { return KVTable.reply("ERROR no shared folder") }
        saving.acquire()
        defer { saving.release() }
        guard MemoryBudget.admit(KVFile.chunkSize, for: "a kv save") else { return KVTable.reply("ERROR out of memory") }
        do throws(FileSystemError) {
            try KVFile.save(table.entries, to: fileSystem)
        } catch {
            return Array("ERROR ".utf8) + error.reason.withUTF8Buffer { Array($0) } + [10]
        }
        return KVTable.reply("OK")
    }

    /// Loads `kv.db` when there is a shared folder, and says what happened in one line.
    func load() {
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
    func logHeap() {
        KernelMemory.drainRemoteFrees()
        Kernel.logHeap("kv: idle, heap", KernelMemory.statistics())
        Log.write(", ")
        Log.decimal(table.count)
        Log.write(" keys\n")
    }
}

extension KVLimits {
    /// The bounds of `kv-keys` and the least `kv-bytes`.
    static let keysRange = 1...(1 << 24)
    static let minimumBytes = 1024

    /// The defaults for this machine's memory (see KV.swift's header).
    static var defaults: KVLimits {
        KVLimits(keys: MemoryBudget.share(denominator: 4, perItem: 256, minimum: 1024, maximum: keysRange.upperBound),
                 bytes: MemoryBudget.share(denominator: 4, perItem: 1, minimum: 1 << 20))
    }

    /// `kv-keys=` and `kv-bytes=`, defaults for what is not given.
    init(commandLine: KernelCommandLine) throws(KernelArgumentError) {
        let defaults = Self.defaults
        let keys = try commandLine.number("kv-keys", minimum: Self.keysRange.lowerBound, maximum: Self.keysRange.upperBound)
        let bytes = try commandLine.number("kv-bytes", minimum: Self.minimumBytes, maximum: 1 << 40)
        self.init(keys: keys ?? defaults.keys, bytes: bytes ?? defaults.bytes)
    }
}

enum KV {
    static let maximumLine = 1024

    static func run(_ context: ServiceContext) -> ExitStatus {
        let limits: KVLimits
        do throws(KernelArgumentError) {
            limits = try KVLimits(commandLine: context.commandLine)
        } catch {
            Log.write("kv: ")
            error.describe()
            Log.put(10)
            return .badCommandLine
        }
        guard let sockets = context.platform.sockets else {
            Log.write("kv: no socket device (on microvm, start with -p HOSTPORT:80)\n")
            return .serviceFailed
        }
        Log.write("kv: limits ")
        Log.decimal(limits.keys)
        Log.write(" keys, ")
        Log.decimal(limits.bytes)
        Log.write(" bytes\n")
        let shared = KVShared(fileSystem: context.platform.fileSystem, limits: limits)
        shared.load()
        return ConnectionServer.run(context, sockets: sockets, name: "kv", idle: { shared.logHeap() }) { client in
            serve(client, shared)
        }
    }

    static func serve(_ client: any StreamSocket, _ shared: KVShared) {
        var reader = LineReader(maximumLength: maximumLine)
        defer { client.close() }
        while true {
            let event: LineEvent
            do {
                event = try reader.next(from: client)
            } catch {
                return
            }
            switch event {
            case .end:
                return
            case .tooLong:
                guard (try? client.writeAll("ERROR line too long\n")) != nil else { return }
            case .line(let line):
                let (reply, quit) = shared.handle(line[...])
                guard (try? client.writeAll(reply)) != nil else { return }
                if quit { return }
            }
        }
    }
}
