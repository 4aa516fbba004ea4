// Reading a guest file whole, as a service does: through the VFS, in reads of `chunk` bytes
// until one comes back empty. Shared by the tests that mount the guest's FUSE client
// (over the virtio-fs driver, or straight on the server).
//
// Rules for callers: the descriptor is closed whatever happens; errors propagate.
import Core

func readWhole(_ vfs: VFS, _ path: String, chunk: Int) throws -> [UInt8] {
    let fd = try vfs.open(Array(path.utf8), flags: .read)
    defer { try? vfs.close(fd) }
    var all: [UInt8] = []
    while true {
        let piece = try vfs.read(fd, count: chunk)
        if piece.isEmpty { return all }
        all += piece
    }
}
