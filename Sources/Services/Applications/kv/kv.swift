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
import Core
import KVStore
import SocketServer
import KVStore
import KVProtocol

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "kv",
            summary: "key-value server on port 80 (SET, GET, DEL, SAVE, QUIT); microvm with -p HOSTPORT:80, kv.db with --share DIR",
            devices: [.sockets, .files]) { KV.run($0) }
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
        guard let sockets = context.sockets else {
            Log.write("kv: no socket device (on microvm, start with -p HOSTPORT:80)\n")
            return .serviceFailed
        }
        Log.write("kv: limits ")
        Log.decimal(limits.keys)
        Log.write(" keys, ")
        Log.decimal(limits.bytes)
        Log.write(" bytes\n")
        let shared = KVShared(fileSystem: context.fileSystem, limits: limits)
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
