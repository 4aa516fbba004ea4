// What the buffer-cache and ext2 tests share: an in-memory `BlockDevice` over image bytes
// (counting calls, optionally read-only), running e2fsprogs (a missing tool fails the test
// with what to install, never skips), building the source folder and images with the real
// `mke2fs -d`, and comparing folder trees.
import Foundation
import XCTest
@testable import Core

final class MemoryBlockDevice: BlockDevice {
    var bytes: [UInt8]
    let sectorSize = 512
    var isReadOnly: Bool
    var reads = 0, writes = 0, flushes = 0

    init(bytes: [UInt8], readOnly: Bool = false) {
        self.bytes = bytes
        isReadOnly = readOnly
    }

    var sectorCount: UInt64 { UInt64(bytes.count / 512) }

    func range(_ sector: UInt64, _ count: Int) throws(BlockDeviceError) -> Range<Int> {
        guard count > 0, count % 512 == 0, sector + UInt64(count / 512) <= sectorCount else { throw .outOfRange }
        return Int(sector) * 512 ..< Int(sector) * 512 + count
    }

    func read(sector: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockDeviceError) {
        let range = try range(sector, buffer.count)
        reads += 1
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    func write(sector: UInt64, from buffer: UnsafeRawBufferPointer) throws(BlockDeviceError) {
        let range = try range(sector, buffer.count)
        guard !isReadOnly else { throw .readOnly }
        writes += 1
        bytes.replaceSubrange(range, with: buffer)
    }

    func flush() throws(BlockDeviceError) { flushes += 1 }
}

enum E2fs {
    /// Runs `tool` (from e2fsprogs) with `arguments`; status and stdout+stderr.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> (status: Int32, output: String) {
        let candidates = ["/usr/sbin/" + tool, "/sbin/" + tool, "/usr/bin/" + tool]
        guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            XCTFail("\(tool) is missing: install e2fsprogs (apt-get install -y e2fsprogs)", file: file, line: line)
            throw CocoaError(.fileNoSuchFile)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A fresh scratch folder.
    static func scratch(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("toro-ext2-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: url)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Deterministic bytes.
    static func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    static let longName = String(repeating: "n", count: 251) + ".txt"

    /// The source folder: a 0-byte file, a 255-byte name, a 300-entry folder, a sparse file,
    /// a 400 KB file (double indirect at 1 KiB blocks), a nested tree.
    static func makeSource(at root: URL) throws {
        let fm = FileManager.default
        try Data().write(to: root.appendingPathComponent("empty"))
        try Data("long name\n".utf8).write(to: root.appendingPathComponent(longName))
        try fm.createDirectory(at: root.appendingPathComponent("many"), withIntermediateDirectories: true)
        for index in 0..<300 {
            try Data("entry \(index)\n".utf8).write(to: root.appendingPathComponent(String(format: "many/file-%03d", index)))
        }
        let sparse = root.appendingPathComponent("sparse")
        FileManager.default.createFile(atPath: sparse.path, contents: nil)
        let handle = try FileHandle(forWritingTo: sparse)
        try handle.seek(toOffset: 3 << 20)
        handle.write(Data("end of sparse\n".utf8))
        try handle.close()
        try Data(pattern(400_000, seed: 1)).write(to: root.appendingPathComponent("big"))
        try fm.createDirectory(at: root.appendingPathComponent("a/b/c"), withIntermediateDirectories: true)
        try Data("deep\n".utf8).write(to: root.appendingPathComponent("a/b/c/deep.txt"))
        try Data(pattern(5000, seed: 2)).write(to: root.appendingPathComponent("a/five-k"))
        try fm.createDirectory(at: root.appendingPathComponent("gone"), withIntermediateDirectories: true)
    }

    /// An image of `source` made by `mke2fs -d` with `options`; its bytes.
    static func image(of source: URL, at image: URL, options: [String], megabytes: Int = 12) throws -> [UInt8] {
        try? FileManager.default.removeItem(at: image)
        let result = try run("mke2fs", ["-q", "-F", "-t", "ext2"] + options + ["-d", source.path, image.path, "\(megabytes)M"])
        XCTAssertEqual(result.status, 0, "mke2fs: \(result.output)")
        return [UInt8](try Data(contentsOf: image))
    }

    /// Every file and folder under `root`: relative path -> contents (nil for a folder).
    static func tree(_ root: URL) throws -> [String: [UInt8]?] {
        var out: [String: [UInt8]?] = [:]
        let fm = FileManager.default
        var stack = [""]
        while let relative = stack.popLast() {
            let url = relative.isEmpty ? root : root.appendingPathComponent(relative)
            for name in try fm.contentsOfDirectory(atPath: url.path) where name != "lost+found" || !relative.isEmpty {
                let path = relative.isEmpty ? name : relative + "/" + name
                var isDirectory: ObjCBool = false
                _ = fm.fileExists(atPath: root.appendingPathComponent(path).path, isDirectory: &isDirectory)
                if isDirectory.boolValue {
                    out[path] = .some(nil)
                    stack.append(path)
                } else {
                    out[path] = .some([UInt8](try Data(contentsOf: root.appendingPathComponent(path))))
                }
            }
        }
        return out
    }

    /// `e2fsck -fn`: exit 0 and no "Fix?" line, or the test fails with its output.
    static func assertClean(_ image: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try run("e2fsck", ["-fn", image.path])
        XCTAssertEqual(result.status, 0, "e2fsck -fn: \(result.output)", file: file, line: line)
        XCTAssertFalse(result.output.contains("Fix?"), "e2fsck -fn: \(result.output)", file: file, line: line)
    }
}

/// A path from a string.
func vpath(_ text: String) -> VFSPath { try! VFSPath(parsing: Array(text.utf8)) }

/// Asserts `body` throws exactly `expected`.
func assertFileSystemError<T>(_ expected: FileSystemError, file: StaticString = #filePath, line: UInt = #line,
                              _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected \(expected), got success", file: file, line: line)
    } catch {
        XCTAssertEqual(error as? FileSystemError, expected, file: file, line: line)
    }
}
