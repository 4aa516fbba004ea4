// `fsbench`: the guest half of `./toro bench fs`. Reads `big.bin` from the shared folder
// whole in 128 KiB reads, then creates `files=N` (default 1000) files of `size=N` bytes
// (default 100) in a new folder `fsbench-out/`, then syncs, timing each phase with the
// monotonic clock. One machine-readable line per phase, which the host parses
// (FSBench.GuestFigures):
//
//     fsbench: read 67108864 bytes in N us
//     fsbench: created 1000 files in N us
//     fsbench: synced in N us
//
// Any failure is one line `fsbench: <step>: <reason>` and status 1. `fsbench-out/` must
// not exist yet (the host gives every run a fresh copy of its folder).
import Core

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "fsbench",
            summary: "times reading big.bin whole and creating 1000 small files in the shared folder (./toro bench fs)",
            devices: [.files]) { FSBenchService.run($0) }
}

enum FSBenchService {
    static let readSize = 128 * 1024

    static func run(_ context: ServiceContext) -> ExitStatus {
        guard let fileSystem = context.fileSystem else {
            Log.write("fsbench: no shared folder (start with --share DIR)\n")
            return .serviceFailed
        }
        let files: Int, size: Int
        do throws(KernelArgumentError) {
            files = try context.commandLine.number("files", minimum: 1, maximum: 100_000) ?? 1000
            size = try context.commandLine.number("size", minimum: 0, maximum: 65536) ?? 100
        } catch {
            Log.write("fsbench: ")
            error.describe()
            Log.put(10)
            return .serviceFailed
        }
        let vfs = VFS()
        do throws(FileSystemError) { try vfs.mount(fileSystem) } catch { return fail("mount", error) }
        context.ready()

        // Phase 1: read big.bin whole.
        var total = 0
        var expected: UInt64 = 0
        let readStart = Clock.monotonicNanoseconds()
        do throws(FileSystemError) {
            let fd = try vfs.open(Array("/big.bin".utf8), flags: .read)
            expected = try vfs.fstat(fd).size
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: readSize, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let count = try vfs.read(fd, into: buffer)
                if count == 0 { break }
                total += count
            }
            try vfs.close(fd)
        } catch {
            return fail("read big.bin", error)
        }
        let readTime = Clock.monotonicNanoseconds() &- readStart
        guard UInt64(total) == expected else {
            Log.write("fsbench: read big.bin: read ")
            Log.decimal(total)
            Log.write(" bytes of ")
            Log.decimal(expected)
            Log.put(10)
            return .serviceFailed
        }
        line("read ", total, " bytes in ", readTime)

        // Phase 2: create the files.
        let folder = Array("/fsbench-out".utf8)
        var content = [UInt8](repeating: 0, count: size)
        for index in content.indices { content[index] = UInt8(ascii: "a") + UInt8(index % 26) }
        if size > 0 { content[size - 1] = 10 }
        let createStart = Clock.monotonicNanoseconds()
        do throws(FileSystemError) {
            try vfs.mkdir(folder)
            for index in 0..<files {
                let fd = try vfs.open(folder + Array("/f".utf8) + digits(index, width: 5) + Array(".txt".utf8),
                                      flags: [.write, .create, .exclusive])
                var done = 0
                while done < content.count {
                    let n = try vfs.write(fd, Array(content[done...]))
                    guard n > 0 else { throw .io }
                    done += n
                }
                try vfs.close(fd)
            }
        } catch {
            return fail("create files", error)
        }
        let createTime = Clock.monotonicNanoseconds() &- createStart
        line("created ", files, " files in ", createTime)

        // Phase 3: sync.
        let syncStart = Clock.monotonicNanoseconds()
        do throws(FileSystemError) { try vfs.sync() } catch { return fail("sync", error) }
        let syncTime = Clock.monotonicNanoseconds() &- syncStart
        Log.write("fsbench: synced in ")
        Log.decimal(syncTime / 1000)
        Log.write(" us\n")
        return .success
    }

    /// `fsbench: <what><count><unit> <nanoseconds / 1000> us`.
    static func line(_ what: StaticString, _ count: Int, _ unit: StaticString, _ nanoseconds: UInt64) {
        Log.write("fsbench: ")
        Log.write(what)
        Log.decimal(count)
        Log.write(unit)
        Log.decimal(nanoseconds / 1000)
        Log.write(" us\n")
    }

    /// `value` in decimal, zero-padded to `width` digits.
    static func digits(_ value: Int, width: Int) -> [UInt8] {
        var out: [UInt8] = []
        var rest = value
        repeat {
            out.insert(UInt8(ascii: "0") + UInt8(rest % 10), at: 0)
            rest /= 10
        } while rest > 0
        while out.count < width { out.insert(UInt8(ascii: "0"), at: 0) }
        return out
    }

    static func fail(_ step: StaticString, _ error: FileSystemError) -> ExitStatus {
        Log.write("fsbench: ")
        Log.write(step)
        Log.write(": ")
        Log.write(error.reason)
        Log.put(10)
        return .serviceFailed
    }
}
