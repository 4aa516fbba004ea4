// Conversions between FUSE's Linux-flavoured values (errno, st_mode, dirent types) and the
// VFS's (`FileSystemError`, `FileKind`, `FileAttributes`).
import Core
import Drivers
import Wire

extension FUSEFileSystem {
    /// A server's errno (Linux numbering) as a `FileSystemError`.
    public static func error(errno: Int32) -> FileSystemError {
        switch errno {
        case 2: return .notFound            // ENOENT
        case 20: return .notADirectory      // ENOTDIR
        case 21: return .isADirectory       // EISDIR
        case 17: return .exists             // EEXIST
        case 39: return .notEmpty           // ENOTEMPTY
        case 28, 122: return .noSpace       // ENOSPC, EDQUOT
        case 30: return .readOnly           // EROFS
        case 22, 18: return .invalidPath    // EINVAL, EXDEV
        case 23, 24: return .tooManyOpenFiles // ENFILE, EMFILE
        case 9: return .badDescriptor       // EBADF
        case 36: return .nameTooLong        // ENAMETOOLONG
        case 1, 13, 40: return .permissionDenied // EPERM, EACCES, ELOOP
        default: return .io
        }
    }

    static func kind(_ mode: UInt32) -> FileKind {
        switch mode & 0o170000 {
        case 0o100000: return .file
        case 0o040000: return .directory
        case 0o120000: return .symlink
        default: return .other
        }
    }

    static func kind(direntType: UInt32) -> FileKind {
        switch direntType {
        case 8: return .file
        case 4: return .directory
        case 10: return .symlink
        default: return .other
        }
    }

    static func attributes(_ a: FUSEAttributes) -> FileAttributes {
        FileAttributes(size: a.size, kind: kind(a.mode), mode: a.mode & 0o7777, modificationTime: a.mtime)
    }

    static func isDotOrDotDot(_ name: UnsafeRawBufferPointer) -> Bool {
        (name.count == 1 && name[0] == 46) || (name.count == 2 && name[0] == 46 && name[1] == 46)
    }
}
