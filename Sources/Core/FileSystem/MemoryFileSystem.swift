// An in-memory `FileSystem`: the tests' back-end and a RAM disk for the kernel.
//
// A tree of reference-counted nodes; a directory keeps its children sorted by name bytes
// (found by halves, listed in that order). Handles hold the node itself, so a file
// unlinked or renamed while open stays readable and writable until closed (POSIX), and its
// bytes count against `capacity` until then. Arrays, not dictionaries: this file is
// linked into kernel images (Core), and a Dictionary would bring its hashing code along.
//
// Limits, each reported as the matching `FileSystemError`:
//   * `capacity` bytes of file data (`noSpace`); a write or truncate that would exceed it
//     fails whole, nothing is written;
//   * `maxNodes` files and directories, the root included (`noSpace`);
//   * `maxHandles` open handles (`tooManyOpenFiles`);
//   * `isReadOnly`: every change is `readOnly` (set it after populating the disk).
// Writing past the end of a file zero-fills the gap; reading past it returns 0 bytes.
// Not thread-safe: the owner serialises calls.
// No recursion over the tree: paths are walked in loops, and `deinit` takes the tree apart
// from an explicit stack (ARC alone would release a deep tree one nested call per level,
// and 2,000 levels overflow a kernel thread's stack).

public final class MemoryFileSystem: FileSystem {
    final class Node {
        let kind: FileKind
        var mode: UInt32
        var modificationTime: UInt64
        /// File contents; empty for directories.
        var data: [UInt8] = []
        /// Directory entries sorted by name; empty for files.
        var children: [(name: [UInt8], node: Node)] = []
        /// Open handles on this node.
        var openCount = 0
        /// False once unlinked (or replaced by a rename): its bytes are freed at last close.
        var isLinked = true

        init(kind: FileKind, mode: UInt32, time: UInt64) {
            self.kind = kind
            self.mode = mode
            self.modificationTime = time
        }
    }

    struct OpenFile {
        let id: UInt64
        let node: Node
        let flags: OpenFlags
    }

    public let capacity: Int
    public let maxNodes: Int
    public let maxHandles: Int
    /// When true, every operation that would change the tree or a file throws `readOnly`.
    public var isReadOnly: Bool
    /// File bytes held, including unlinked files still open.
    public private(set) var usedBytes = 0
    /// Files and directories linked into the tree, the root included.
    public private(set) var nodeCount = 1
    /// Handles currently open.
    public var openHandleCount: Int { handles.count }

    let root: Node
    /// Open handles in the order they were opened (so by `id`).
    var handles: [OpenFile] = []
    var nextHandle: UInt64 = 1
    let now: () -> UInt64

    /// `clock` supplies modification times in Unix seconds (default: the wall clock, or 0).
    public init(capacity: Int = 64 << 20, maxNodes: Int = 65_536, maxHandles: Int = 1024,
                readOnly: Bool = false, clock: @escaping () -> UInt64 = MemoryFileSystem.wallClockSeconds) {
        self.capacity = capacity
        self.maxNodes = maxNodes
        self.maxHandles = maxHandles
        self.isReadOnly = readOnly
        self.now = clock
        root = Node(kind: .directory, mode: 0o755, time: clock())
    }

    deinit {
        // Each node's children are moved to the stack before the node goes, so no release
        // ever finds a node that still holds others. (Folders outside the tree, held only by
        // a handle, are empty: rmdir and rename only unlink empty ones.)
        var stack = [root]
        while let node = stack.popLast() {
            for child in node.children { stack.append(child.node) }
            node.children = []
        }
    }

    public static func wallClockSeconds() -> UInt64 {
        UInt64(max(0, (Clock.wallClockNanoseconds() ?? 0) / 1_000_000_000))
    }

    // MARK: FileSystem

    public func stat(_ path: VFSPath) throws(FileSystemError) -> FileAttributes {
        MemoryFileSystem.attributes(of: try resolve(path))
    }

    public func attributes(_ handle: FileHandleID) throws(FileSystemError) -> FileAttributes {
        guard let file = openFile(handle) else { throw .badDescriptor }
        return MemoryFileSystem.attributes(of: file.node)
    }

    static func attributes(of node: Node) -> FileAttributes {
        let size = node.kind == .directory ? node.children.count : node.data.count
        return FileAttributes(size: UInt64(size), kind: node.kind, mode: node.mode,
                              modificationTime: node.modificationTime)
    }

    public func open(_ path: VFSPath, flags: OpenFlags, mode: UInt32) throws(FileSystemError) -> FileHandleID {
        guard handles.count < maxHandles else { throw .tooManyOpenFiles }
        let node: Node
        if path.isRoot {
            node = root
            if flags.contains(.create) && flags.contains(.exclusive) { throw .exists }
        } else {
            let (parent, name) = try resolveParent(path)
            if let existing = parent.child(name) {
                if flags.contains(.create) && flags.contains(.exclusive) { throw .exists }
                node = existing
            } else {
                guard flags.contains(.create) else { throw .notFound }
                guard !isReadOnly else { throw .readOnly }
                guard nodeCount < maxNodes else { throw .noSpace }
                node = Node(kind: .file, mode: mode & 0o7777, time: now())
                parent.link(node, as: name)
                parent.modificationTime = node.modificationTime
                nodeCount += 1
            }
        }
        // POSIX: a directory opens read-only and never with O_CREAT (EISDIR).
        if node.kind == .directory && flags.contains(.write) { throw .isADirectory }
        if node.kind == .directory && flags.contains(.create) { throw .isADirectory }
        if flags.contains(.write) && isReadOnly { throw .readOnly }
        // `.truncate` without `.write` is ignored (POSIX leaves it unspecified).
        if flags.contains(.truncate) && flags.contains(.write) && !node.data.isEmpty {
            usedBytes -= node.data.count
            node.data = []
            node.modificationTime = now()
        }
        let id = nextHandle
        nextHandle &+= 1
        handles.append(OpenFile(id: id, node: node, flags: flags))
        node.openCount += 1
        return FileHandleID(id)
    }

    public func read(_ handle: FileHandleID, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        guard let file = openFile(handle), file.flags.contains(.read) else { throw .badDescriptor }
        guard file.node.kind != .directory else { throw .isADirectory }
        let data = file.node.data
        guard offset < UInt64(data.count), buffer.count > 0 else { return 0 }
        let start = Int(offset)
        let count = min(buffer.count, data.count - start)
        data.withUnsafeBytes { source in
            UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<start + count]))
        }
        return count
    }

    public func write(_ handle: FileHandleID, offset: UInt64, from buffer: UnsafeRawBufferPointer) throws(FileSystemError) -> Int {
        guard let file = openFile(handle), file.flags.contains(.write) else { throw .badDescriptor }
        guard !isReadOnly else { throw .readOnly }
        guard buffer.count > 0 else { return 0 }
        let node = file.node
        guard offset <= UInt64(capacity) else { throw .noSpace }
        let start = Int(offset)
        let (end, overflow) = start.addingReportingOverflow(buffer.count)
        guard !overflow else { throw .noSpace }
        if end > node.data.count {
            try reserve(end - node.data.count)
            node.data.append(contentsOf: repeatElement(0, count: end - node.data.count))
        }
        node.data.withUnsafeMutableBytes { target in
            UnsafeMutableRawBufferPointer(rebasing: target[start..<end]).copyMemory(from: buffer)
        }
        node.modificationTime = now()
        return buffer.count
    }

    public func close(_ handle: FileHandleID) throws(FileSystemError) {
        guard let index = handles.firstIndex(where: { $0.id == handle.rawValue }) else { throw .badDescriptor }
        let file = handles.remove(at: index)
        if handles.isEmpty { handles = [] }
        file.node.openCount -= 1
        if file.node.openCount == 0 && !file.node.isLinked { release(file.node) }
    }

    public func readDirectory(_ path: VFSPath) throws(FileSystemError) -> [DirectoryEntry] {
        let node = try resolve(path)
        guard node.kind == .directory else { throw .notADirectory }
        var entries: [DirectoryEntry] = []
        entries.reserveCapacity(node.children.count)
        // In name order, as the children are kept.
        for child in node.children { entries.append(DirectoryEntry(name: child.name, kind: child.node.kind)) }
        return entries
    }

    public func makeDirectory(_ path: VFSPath, mode: UInt32) throws(FileSystemError) {
        if path.isRoot { throw .exists }
        let (parent, name) = try resolveParent(path)
        guard parent.child(name) == nil else { throw .exists }
        guard !isReadOnly else { throw .readOnly }
        guard nodeCount < maxNodes else { throw .noSpace }
        let node = Node(kind: .directory, mode: mode & 0o7777, time: now())
        parent.link(node, as: name)
        parent.modificationTime = node.modificationTime
        nodeCount += 1
    }

    public func remove(_ path: VFSPath) throws(FileSystemError) {
        if path.isRoot { throw .isADirectory }
        let (parent, name) = try resolveParent(path)
        guard let node = parent.child(name) else { throw .notFound }
        guard node.kind != .directory else { throw .isADirectory }
        guard !isReadOnly else { throw .readOnly }
        unlink(name, from: parent)
    }

    public func removeDirectory(_ path: VFSPath) throws(FileSystemError) {
        if path.isRoot { throw .invalidPath }
        let (parent, name) = try resolveParent(path)
        guard let node = parent.child(name) else { throw .notFound }
        guard node.kind == .directory else { throw .notADirectory }
        guard node.children.isEmpty else { throw .notEmpty }
        guard !isReadOnly else { throw .readOnly }
        unlink(name, from: parent)
    }

    public func rename(from: VFSPath, to: VFSPath) throws(FileSystemError) {
        if from.isRoot || to.isRoot { throw .invalidPath }
        let (sourceParent, sourceName) = try resolveParent(from)
        guard let node = sourceParent.child(sourceName) else { throw .notFound }
        if from == to { return }
        // A directory cannot become its own descendant (POSIX: EINVAL).
        if to.isWithin(from) { throw .invalidPath }
        let (targetParent, targetName) = try resolveParent(to)
        if let existing = targetParent.child(targetName) {
            if node.kind == .directory {
                guard existing.kind == .directory else { throw .notADirectory }
                guard existing.children.isEmpty else { throw .notEmpty }
            } else if existing.kind == .directory {
                throw .isADirectory
            }
        }
        guard !isReadOnly else { throw .readOnly }
        if targetParent.child(targetName) != nil { unlink(targetName, from: targetParent) }
        _ = sourceParent.unlinkChild(sourceName)
        targetParent.link(node, as: targetName)
        let time = now()
        sourceParent.modificationTime = time
        targetParent.modificationTime = time
    }

    public func truncate(_ path: VFSPath, size: UInt64) throws(FileSystemError) {
        let node = try resolve(path)
        guard node.kind != .directory else { throw .isADirectory }
        guard !isReadOnly else { throw .readOnly }
        guard size <= UInt64(capacity) else { throw .noSpace }
        let newSize = Int(size)
        if newSize > node.data.count {
            try reserve(newSize - node.data.count)
            node.data.append(contentsOf: repeatElement(0, count: newSize - node.data.count))
        } else if newSize < node.data.count {
            usedBytes -= node.data.count - newSize
            node.data.removeLast(node.data.count - newSize)
        }
        node.modificationTime = now()
    }

    public func statFileSystem() throws(FileSystemError) -> FileSystemStatistics {
        let block = 4096
        return FileSystemStatistics(
            blockSize: UInt32(block), totalBlocks: UInt64(capacity / block),
            freeBlocks: UInt64((capacity - usedBytes) / block),
            totalFiles: UInt64(maxNodes), freeFiles: UInt64(maxNodes - nodeCount),
            maxNameLength: UInt32(VFSPath.maxComponentLength))
    }

    // MARK: Tree walking

    /// The node at `path`; `notADirectory` when a component on the way is a file.
    func resolve(_ path: VFSPath) throws(FileSystemError) -> Node {
        var node = root
        for component in path.components {
            guard node.kind == .directory else { throw .notADirectory }
            guard let child = node.child(component) else { throw .notFound }
            node = child
        }
        return node
    }

    /// The directory holding `path` (not the root) and the entry's name within it.
    func resolveParent(_ path: VFSPath) throws(FileSystemError) -> (Node, [UInt8]) {
        guard let parentPath = path.parent, let name = path.name else { throw .invalidPath }
        let parent = try resolve(parentPath)
        guard parent.kind == .directory else { throw .notADirectory }
        return (parent, name)
    }

    /// Takes `count` more bytes out of `capacity`, or throws `noSpace` taking none.
    func reserve(_ count: Int) throws(FileSystemError) {
        guard count <= capacity - usedBytes else { throw .noSpace }
        usedBytes += count
    }

    /// Drops the entry `name` from `parent`; its bytes go once no handle holds it.
    func unlink(_ name: [UInt8], from parent: Node) {
        guard let node = parent.unlinkChild(name) else { return }
        node.isLinked = false
        nodeCount -= 1
        parent.modificationTime = now()
        if node.openCount == 0 { release(node) }
    }

    /// Returns an unlinked node's bytes to the pool.
    func release(_ node: Node) {
        usedBytes -= node.data.count
        node.data = []
    }

    /// The open file behind `handle`, if any.
    func openFile(_ handle: FileHandleID) -> OpenFile? {
        handles.first { $0.id == handle.rawValue }
    }
}

extension MemoryFileSystem.Node {
    /// Where `name` is among the children, or where it would go.
    func position(of name: [UInt8]) -> Int {
        var low = 0
        var high = children.count
        while low < high {
            let middle = (low + high) / 2
            if children[middle].name.lexicographicallyPrecedes(name) { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The child called `name`, if any.
    func child(_ name: [UInt8]) -> MemoryFileSystem.Node? {
        let index = position(of: name)
        return index < children.count && children[index].name == name ? children[index].node : nil
    }

    /// Adds (or replaces) the child called `name`.
    func link(_ node: MemoryFileSystem.Node, as name: [UInt8]) {
        let index = position(of: name)
        if index < children.count && children[index].name == name {
            children[index].node = node
        } else {
            children.insert((name: name, node: node), at: index)
        }
    }

    /// Removes the child called `name` and returns it.
    func unlinkChild(_ name: [UInt8]) -> MemoryFileSystem.Node? {
        let index = position(of: name)
        guard index < children.count && children[index].name == name else { return nil }
        return children.remove(at: index).node
    }
}
