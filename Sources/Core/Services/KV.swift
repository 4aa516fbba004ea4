// `kv` (Toro's HashTableServer): a key-value server on a socket port (80 unless
// `port=N`), one thread per client (ConnectionServer.swift), the line protocol in KVProtocol.swift, lines of at
// most 1024 bytes (a longer line gets `ERROR line too long` and the connection goes on).
// The table is shared by every client thread; all of them run on CPU 0 with the socket
// device, and the scheduler is cooperative, so no lock is needed.
// Persistence: with a shared folder (`--share DIR`), the table is loaded at start from
// `kv.db` (format in KVProtocol.swift, KVFile) and `SAVE` writes it back; one line says
// what was loaded (`kv: loaded N keys from kv.db`), and a corrupt file gives one line
// (`kv: kv.db is corrupt (<reason>); starting empty`), never a trap.
final class KVShared {
    var table = KVTable()
    let fileSystem: (any FileSystem)?

    init(fileSystem: (any FileSystem)?) {
        self.fileSystem = fileSystem
    }

    /// Loads `kv.db` when there is a shared folder, and says what happened in one line.
    func load() {
        guard let fileSystem else { return }
        switch table.load(from: fileSystem) {
        case .absent:
            Log.write("kv: no kv.db in the shared folder; starting empty\n")
        case .loaded(let entries):
            Log.write("kv: loaded ")
            Log.decimal(entries.count)
            Log.write(entries.count == 1 ? " key from kv.db\n" : " keys from kv.db\n")
        case .corrupt(let corruption):
            Log.write("kv: kv.db is corrupt (")
            Log.write(corruption.reason)
            Log.write("); starting empty\n")
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

enum KV {
    static let maximumLine = 1024

    static func run(_ context: ServiceContext) -> ExitStatus {
        guard let sockets = context.platform.sockets else {
            Log.write("kv: no socket device (on microvm, start with -p HOSTPORT:80)\n")
            return .serviceFailed
        }
        let shared = KVShared(fileSystem: context.platform.fileSystem)
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
                let (reply, quit) = shared.table.handle(line[...], fileSystem: shared.fileSystem)
                guard (try? client.writeAll(reply)) != nil else { return }
                if quit { return }
            }
        }
    }
}
