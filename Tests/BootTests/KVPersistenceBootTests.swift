// Tier 2: kv's table survives a reboot through the shared folder (`kv.db`, SAVE), a
// read-only share refuses SAVE and stays untouched, and a corrupt kv.db gives one log line
// and an empty table.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import Wire
import KVProtocol
import ToroTool

final class KVPersistenceBootTests: XCTestCase {
    func makeFolder(_ tag: String) throws -> String {
        let folder = NSTemporaryDirectory() + "toro-kv-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    /// Every entry under `folder` with its bytes, sorted (the "listing + contents").
    func snapshot(_ folder: String) -> [String] {
        let names = (FileManager.default.subpaths(atPath: folder) ?? []).sorted()
        return names.map { name in
            let data = FileManager.default.contents(atPath: folder + "/" + name)
            return "\(name) \(data.map { Array($0).description } ?? "-")"
        }
    }

    func testSaveSurvivesAReboot() throws {
        try saveSurvivesAReboot(on: .microvm)
    }

    /// Legacy: the folder is an ext2 image on virtio-blk, written back after each run, and
    /// the port is QEMU's user networking to Toro's own TCP/IP.
    func testLegacySaveSurvivesAReboot() throws {
        try saveSurvivesAReboot(on: .legacy)
    }

    func saveSurvivesAReboot(on platform: GuestPlatform) throws {
        guard Harness.preflight() else { return }
        let folder = try makeFolder("save")
        defer { try? FileManager.default.removeItem(atPath: folder) }

        guard let first = ShareGuest.boot(service: "kv", platform: platform, share: folder, port: true) else { return }
        XCTAssertTrue(first.outputLines.contains("kv: no kv.db in the shared folder; starting empty"), ShareGuest.describe(first))
        let kv = try KVClient.connect(port: first.port, within: 10, timeout: 60)
        XCTAssertEqual(try kv.request("SET greeting hello from the first boot"), "OK")
        XCTAssertEqual(try kv.request("SET other 42"), "OK")
        XCTAssertEqual(try kv.request("SAVE"), "OK", ShareGuest.describe(first))
        XCTAssertEqual(try kv.request("QUIT"), "BYE")
        kv.close()
        ShareGuest.stop(first)

        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/kv.db.tmp"))
        let saved = FileManager.default.contents(atPath: folder + "/kv.db").map { Array($0) } ?? []
        XCTAssertEqual(KVFile.decode(saved), .success([Array("greeting".utf8): Array("hello from the first boot".utf8),
                                                       Array("other".utf8): Array("42".utf8)]))

        guard let second = ShareGuest.boot(service: "kv", platform: platform, share: folder, port: true) else { return }
        defer { ShareGuest.stop(second) }
        XCTAssertTrue(second.outputLines.contains("kv: loaded 2 keys from kv.db"), ShareGuest.describe(second))
        let again = try KVClient.connect(port: second.port, within: 10, timeout: 60)
        XCTAssertEqual(try again.request("GET greeting"), "VALUE hello from the first boot")
        XCTAssertEqual(try again.request("GET other"), "VALUE 42")
        again.close()
    }

    func testReadOnlyShareRefusesSaveAndStaysUnchanged() throws {
        guard Harness.preflight() else { return }
        let folder = try makeFolder("ro")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Data(KVFile.encode([Array("kept".utf8): Array("yes".utf8)])).write(to: URL(fileURLWithPath: folder + "/kv.db"))
        try Data("not kv\n".utf8).write(to: URL(fileURLWithPath: folder + "/notes.txt"))
        let before = snapshot(folder)

        guard let guest = ShareGuest.boot(service: "kv", share: folder, readOnly: true, port: true) else { return }
        defer { ShareGuest.stop(guest) }
        XCTAssertTrue(guest.outputLines.contains("kv: loaded 1 key from kv.db"), ShareGuest.describe(guest))
        let kv = try KVClient.connect(port: guest.port, within: 10, timeout: 60)
        XCTAssertEqual(try kv.request("GET kept"), "VALUE yes")
        XCTAssertEqual(try kv.request("SET new value"), "OK")
        XCTAssertEqual(try kv.request("SAVE"), "ERROR read-only file system", ShareGuest.describe(guest))
        kv.close()
        XCTAssertEqual(snapshot(folder), before)
    }

    func testCorruptFileStartsEmpty() throws {
        guard Harness.preflight() else { return }
        let folder = try makeFolder("corrupt")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Data("TOROKV1\ngarbage that is not a table".utf8).write(to: URL(fileURLWithPath: folder + "/kv.db"))
        guard let guest = ShareGuest.boot(service: "kv", share: folder, port: true) else { return }
        defer { ShareGuest.stop(guest) }
        let reports = guest.outputLines.filter { $0.hasPrefix("kv: kv.db") }
        XCTAssertEqual(reports, ["kv: kv.db is corrupt (checksum mismatch); starting empty"], ShareGuest.describe(guest))
        let kv = try KVClient.connect(port: guest.port, within: 10, timeout: 60)
        XCTAssertEqual(try kv.request("GET kept"), "NOT_FOUND")
        kv.close()
    }
}
