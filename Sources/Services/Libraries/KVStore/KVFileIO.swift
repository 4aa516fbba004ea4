// `kv.db` in a shared folder: SAVE's atomic, streamed write and the streamed load at start.
//
//   * `save` opens `kv.db.tmp`, fills one `KVFile.chunkSize` (16 KiB) buffer from a
//     KVFileEncoder and writes it, over and over, then closes and renames the file over
//     `kv.db`: a crash leaves either the old file or the new one, never half of one, and
//     memory stays one buffer whatever the table's size. On any failure the temporary file
//     is removed and the old `kv.db` stays as it was.
//   * `load` stats the file (a directory or device is refused before it is opened), then
//     reads it a chunk at a time into a KVFileDecoder that knows the size, so a file the
//     table's limits cannot hold is refused from its header before anything is allocated,
//     and reading stops at the first sign that it will not fit. The file is only read.
//
// Rules for callers: one `save` at a time per folder (both use the same temporary name),
// and nothing may change `entries` while `save` runs (see KVFileEncoder); the service
// serialises both (KV.swift). The file system's own calls may block.
import Core
import KVProtocol

extension KVFile {
    /// What `load` found.
    public enum LoadOutcome: Equatable {
        /// No `kv.db`: the table starts empty.
        case absent
        /// The table and what its entries cost (KVLimits.cost).
        case loaded([[UInt8]: [UInt8]], bytes: Int)
        /// The file is there but unusable.
        case corrupt(KVFileCorruption)
        /// The file does not fit the table's limits or the memory budget.
        case refused(KVFileRefusal)
        /// The file could not be read.
        case failed(FileSystemError)
    }

    /// Reads and decodes `kv.db` within `limits`; `admit` is asked once for what the
    /// header and the file's size say the entries will cost.
    public static func load(from fileSystem: any FileSystem, limits: KVLimits,
                            admit: @escaping (Int) -> Bool = { _ in true }) -> LoadOutcome {
        let handle: FileHandleID
        let size: UInt64
        do throws(FileSystemError) {
            let path = try VFSPath(parsing: name)
            let attributes = try fileSystem.stat(path)
            guard attributes.kind == .file else { return .corrupt(.notARegularFile) }
            size = attributes.size
            handle = try fileSystem.open(path, flags: .read, mode: 0)
        } catch {
            return error == .notFound ? .absent : .failed(error)
        }
        defer { try? fileSystem.close(handle) }
        var decoder = KVFileDecoder(limits: limits, fileSize: Int(clamping: size), admit: admit)
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        var offset: UInt64 = 0
        var reading = true
        while reading {
            var failure: FileSystemError?
            chunk.withUnsafeMutableBytes { raw in
                let count: Int
                do throws(FileSystemError) { count = try fileSystem.read(handle, offset: offset, into: raw) } catch {
                    failure = error
                    return
                }
                guard count > 0, count <= raw.count else {
                    if count < 0 || count > raw.count { failure = .io }
                    reading = false
                    return
                }
                offset += UInt64(count)
                reading = decoder.feed(UnsafeRawBufferPointer(rebasing: raw[0..<count]))
            }
            if let failure { return .failed(failure) }
        }
        switch decoder.finish() {
        case .loaded(let entries, let bytes): return .loaded(entries, bytes: bytes)
        case .corrupt(let corruption): return .corrupt(corruption)
        case .refused(let refusal): return .refused(refusal)
        }
    }

    /// Writes `entries` to `kv.db.tmp` a chunk at a time, then renames it to `kv.db`.
    public static func save(_ entries: [[UInt8]: [UInt8]], to fileSystem: any FileSystem) throws(FileSystemError) {
        let temporary = try VFSPath(parsing: temporaryName)
        let final = try VFSPath(parsing: name)
        let handle = try fileSystem.open(temporary, flags: [.write, .create, .truncate], mode: 0o644)
        var failure: FileSystemError?
        var encoder = KVFileEncoder(entries)
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        var fileOffset: UInt64 = 0
        while failure == nil && !encoder.isFinished {
            chunk.withUnsafeMutableBytes { raw in
                let count = encoder.fill(raw)
                var offset = 0
                while offset < count && failure == nil {
                    do throws(FileSystemError) {
                        let written = try fileSystem.write(handle, offset: fileOffset,
                                                           from: UnsafeRawBufferPointer(rebasing: raw[offset..<count]))
                        if written <= 0 || written > count - offset {
                            failure = .io
                        } else {
                            offset += written
                            fileOffset += UInt64(written)
                        }
                    } catch {
                        failure = error
                    }
                }
            }
        }
        do throws(FileSystemError) { try fileSystem.close(handle) } catch { if failure == nil { failure = error } }
        if failure == nil {
            do throws(FileSystemError) { try fileSystem.rename(from: temporary, to: final) } catch { failure = error }
        }
        if let failure {
            try? fileSystem.remove(temporary)
            throw failure
        }
    }
}
