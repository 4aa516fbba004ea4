// FUSEFileSystem's node bookkeeping: paths walked to node IDs by LOOKUP, the references
// each walk takes and gives back (FORGET), and the open-file table (RELEASE at close).
//
// Rules: called with the file system's lock held; every reference a LOOKUP, CREATE or
// MKDIR takes is either kept by an open file (until `closeLocked`) or forgotten before the
// operation returns, whether it succeeds or throws.
import Core
import Drivers
import Wire

extension FUSEFileSystem {
    /// Walks `components` from the root with LOOKUP. On failure, what was looked up is
    /// forgotten before the error is thrown.
    func resolve(_ components: ArraySlice<[UInt8]>) throws(FileSystemError) -> Resolved {
        var resolved = Resolved(node: FUSE.rootID, attributes: nil, held: [])
        for name in components {
            let entry: FUSEEntry?
            do throws(FileSystemError) {
                entry = try lookUpOptional(resolved.node, name)
            } catch {
                forget(resolved.held)
                throw error
            }
            guard let entry else {
                forget(resolved.held)
                throw .notFound
            }
            resolved.node = entry.nodeID
            resolved.attributes = entry.attributes
            resolved.held.append(entry.nodeID)
        }
        return resolved
    }

    /// The parent of `path` resolved, and the last name; the root has no parent.
    func resolveParent(_ path: VFSPath) throws(FileSystemError) -> (Resolved, [UInt8]) {
        guard let name = path.name else { throw .invalidPath }
        let parent = try resolve(path.components.dropLast())
        return (parent, name)
    }

    /// LOOKUP `name` in `directory`: the entry (one reference taken), or nil when absent.
    func lookUpOptional(_ directory: UInt64, _ name: [UInt8]) throws(FileSystemError) -> FUSEEntry? {
        do {
            let entry = try call(.lookup(name: name), node: directory) { (reply: FUSEReply) throws(FUSEError) in try reply.entry() }
            // A node ID of 0 is a negative entry: no such name, and no reference taken.
            return entry.nodeID == 0 ? nil : entry
        } catch .notFound {
            return nil
        }
    }

    func attributes(of resolved: Resolved) throws(FileSystemError) -> FUSEAttributes {
        if let attributes = resolved.attributes { return attributes }
        return try call(.getattr(fileHandle: nil), node: resolved.node) {
            (reply: FUSEReply) throws(FUSEError) in try reply.attributes()
        }.attributes
    }

    /// Returns one reference on each node (FORGET on the high-priority queue, no reply).
    func forget(_ nodes: [UInt64]) {
        var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0) // 48 bytes
        for node in nodes where node != FUSE.rootID {
            withUnsafeMutableBytes(of: &bytes) { buffer in
                let header = FUSERequestHeader(unique: takeUnique(), nodeID: node)
                guard let length = try? FUSERequest.forget(lookups: 1).encode(into: buffer, header: header) else { return }
                // A failed device is reported by the next request; a lost FORGET only costs
                // the host one cached descriptor.
                try? channel.post(UnsafeRawBufferPointer(rebasing: buffer[..<length]))
            }
        }
    }

    /// Adds `file` to the open files under a new handle (its `id` is set here).
    func register(_ file: OpenFile) -> FileHandleID {
        var file = file
        file.id = nextHandle
        nextHandle &+= 1
        files.append(file)
        return FileHandleID(file.id)
    }

    /// The open file with handle `id`, if any.
    func openFile(_ id: UInt64) -> OpenFile? {
        files.first { $0.id == id }
    }

    /// FLUSH (files opened for writing), then RELEASE (or RELEASEDIR), then forget the
    /// file's node. The handle is gone even when the server fails, as `FileSystem.close`
    /// promises; a failed FLUSH is returned (the host could not write the data back), as
    /// close(2) reports it. A server without FLUSH (ENOSYS) is fine. Read-only handles skip
    /// FLUSH: it would only report write-back errors (this client takes no POSIX locks,
    /// the other thing FLUSH ends), and it would cost every static-web request a round trip.
    @discardableResult
    func closeLocked(_ id: UInt64) -> FileSystemError? {
        guard let index = files.firstIndex(where: { $0.id == id }) else { return nil }
        let file = files.remove(at: index)
        // Release the array's storage with the last file, so memory returns to its idle figure.
        if files.isEmpty { files = [] }
        var failure: FileSystemError? = nil
        if !file.directory && file.flags.contains(.write) {
            do throws(FileSystemError) {
                try call(.flush(fileHandle: file.fileHandle, lockOwner: 0), node: file.node) {
                    (reply: FUSEReply) throws(FUSEError) in try reply.empty()
                }
            } catch {
                if !(error == .io && lastErrno == 38) { failure = error }
            }
        }
        let request: FUSERequest = file.directory ? .releasedir(fileHandle: file.fileHandle, flags: 0)
                                                  : .release(fileHandle: file.fileHandle, flags: 0)
        _ = try? call(request, node: file.node) { (reply: FUSEReply) throws(FUSEError) in try reply.empty() }
        forget([file.node])
        return failure
    }
}
