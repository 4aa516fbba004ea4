// The one error type of the file-system layer: every `FileSystem` back-end (memory, virtio-fs,
// ext2) and the `VFS` above them throw it, so services see the same cases whatever is mounted.
// Back-ends map their own codes onto it (virtio-fs: FUSE's negated errno; ext2: on-disk
// inconsistencies become `io`, never a trap: a disk image is untrusted input).

public enum FileSystemError: Error, Equatable, Sendable {
    /// A component of the path, or the path itself, does not exist (ENOENT).
    case notFound
    /// A component used as a directory is a file or symlink (ENOTDIR).
    case notADirectory
    /// The operation needs a file but the path names a directory (EISDIR).
    case isADirectory
    /// The target already exists (EEXIST): `mkdir` of an existing name, exclusive create.
    case exists
    /// `rmdir` of a directory that still has entries, or rename over one (ENOTEMPTY).
    case notEmpty
    /// The back-end has no room left for the data or the new entry (ENOSPC).
    case noSpace
    /// The device or host failed, or answered with something malformed (EIO).
    case io
    /// The file system is mounted read-only (EROFS).
    case readOnly
    /// The path is empty or relative, holds a NUL, or its `..` climbs above the root (EINVAL).
    case invalidPath
    /// The descriptor table or the back-end's handle table is full (EMFILE).
    case tooManyOpenFiles
    /// The descriptor or handle is not open, or was not opened for this access (EBADF).
    case badDescriptor
    /// A component exceeds 255 bytes or the whole path 4096 bytes (ENAMETOOLONG).
    case nameTooLong
    /// The back-end refuses access (EACCES, EPERM): for virtio-fs, a symlink that leaves
    /// the shared folder, a device file, or an operation the host does not allow; for ext2,
    /// a symlink climbing above the root, or more than 40 links in one lookup (a loop).
    case permissionDenied
    /// The work would not fit the memory budget (ENOMEM): refused by admission control
    /// (`MemoryBudget.admit`) before anything was allocated, e.g. a listing of a huge folder.
    case outOfMemory
    /// Outside data exceeds a bound the kernel keeps on it (E2BIG): a folder listing more
    /// entries than a listing may hold, a tree deeper or larger than a walk may cover.
    case tooLarge
}

extension FileSystemError {
    /// A few words for a log line or a protocol reply (`ERROR read-only file system`),
    /// used by fs-manifest and kv's SAVE.
    public var reason: StaticString {
        switch self {
        case .notFound: return "not found"
        case .notADirectory: return "not a folder"
        case .isADirectory: return "is a folder"
        case .exists: return "exists"
        case .notEmpty: return "folder not empty"
        case .noSpace: return "no space left on device"
        case .io: return "i/o error"
        case .readOnly: return "read-only file system"
        case .invalidPath: return "invalid path"
        case .tooManyOpenFiles: return "too many open files"
        case .badDescriptor: return "bad descriptor"
        case .nameTooLong: return "name too long"
        case .permissionDenied: return "permission denied"
        case .outOfMemory: return "not enough memory"
        case .tooLarge: return "too large"
        }
    }
}
