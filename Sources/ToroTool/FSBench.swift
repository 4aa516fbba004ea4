// `toro bench fs [--runs N]`: the fsbench probe on legacy (ext2 over virtio-blk-pci and the
// buffer cache) and on microvm (virtio-fs through toro-fs), and the host doing the same
// work, in one run: the time to read a 64 MiB file whole, and to create 1,000 files of
// 100 bytes in a new folder and sync. Figures only: a slow run never fails the command; a
// boot that fails or a guest that prints no figures does.
//
// What the figures include: the guest's own monotonic clock around each phase (fsbench.swift
// prints `fsbench: read B bytes in N us`, `created F files in N us`, `synced in N us`), so
// neither the boot, nor building the ext2 image, nor writing it back is counted. Every boot
// is TCG with 1 CPU and `--memory 256`, and gets a fresh copy of the folder (the legacy
// image is made from that copy: DiskImage's rule gives a 144 MiB image, 1 KiB blocks, and
// the kernel's default buffer cache of 1024 blocks). Both guests' reads come from a file
// on the host that is most likely in the host's page cache (toro-fs reads big.bin, QEMU
// reads the image), so the host's cached read is shown too.
//
// The host reads big.bin in 128 KiB reads after dropping it from the page cache with
// posix_fadvise(DONTNEED) (checked with mincore; the table says when it stayed cached),
// then reads it again cached; it creates the files with open(O_CREAT|O_EXCL), write and
// close, then fsyncs the folder (the guests' sync: ext2 writes every dirty block and
// flushes the device; virtio-fs has nothing to sync, toro-fs writes through to the host).
// Runs interleave legacy, microvm and host; the table gives medians.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The figures one fsbench boot printed.
public struct FSBenchGuestFigures: Equatable, Sendable {
    public var bytesRead: Int
    public var readMicroseconds: Int
    public var filesCreated: Int
    public var createMicroseconds: Int
    public var syncMicroseconds: Int

    /// Reads the three `fsbench:` lines out of a console transcript (kernel log lines with
    /// a timestamp are accepted too); nil when any is missing or malformed.
    public static func parse(_ output: String) -> FSBenchGuestFigures? {
        var read: (Int, Int)?, created: (Int, Int)?, synced: Int?
        for raw in output.split(whereSeparator: \.isNewline) {
            let text = KernelLog.stripTimestamp(raw) ?? raw
            let words = text.split(separator: " ")
            guard words.first == "fsbench:", words.last == "us" else { continue }
            // fsbench: read B bytes in N us | fsbench: created F files in N us | fsbench: synced in N us
            if words.count == 7, words[1] == "read", words[3] == "bytes", words[4] == "in",
               let bytes = Int(words[2]), let us = Int(words[5]) {
                read = (bytes, us)
            } else if words.count == 7, words[1] == "created", words[3] == "files", words[4] == "in",
                      let files = Int(words[2]), let us = Int(words[5]) {
                created = (files, us)
            } else if words.count == 5, words[1] == "synced", words[2] == "in", let us = Int(words[3]) {
                synced = us
            }
        }
        guard let read, let created, let synced else { return nil }
        return FSBenchGuestFigures(bytesRead: read.0, readMicroseconds: read.1, filesCreated: created.0,
                                   createMicroseconds: created.1, syncMicroseconds: synced)
    }
}

public enum FSBench {
    public struct Options: Equatable, Sendable {
        public var runs = 3
        public init() {}
    }

    public static let bigSize = 64 << 20
    public static let readSize = 128 << 10
    public static let fileCount = 1000
    public static let fileSize = 100
    public static let memoryMiB = 256
    static let timeout = 1800

    /// One target's figures over the runs, in seconds.
    public struct Figures: Equatable, Sendable {
        public var label: String
        public var read: [Double] = []
        public var create: [Double] = []
        public var sync: [Double] = []
        public var failures = 0
        public init(label: String) { self.label = label }

        /// Create plus sync, per run.
        public var createAndSync: [Double] { zip(create, sync).map { $0 + $1 } }

        public mutating func add(_ guest: FSBenchGuestFigures) {
            read.append(Double(guest.readMicroseconds) / 1e6)
            create.append(Double(guest.createMicroseconds) / 1e6)
            sync.append(Double(guest.syncMicroseconds) / 1e6)
        }
    }

    public static func parse(_ arguments: [String]) throws(ToolFailure) -> Options {
        var options = Options()
        var reader = ArgumentReader(arguments)
        while let flag = try reader.nextFlag() {
            switch flag {
            case "--runs":
                options.runs = try ArgumentReader.number(try reader.value(for: flag), flag: flag, range: 1...100,
                                                         what: "a number of runs")
            default:
                throw ArgumentReader.unknown(flag, command: "bench fs")
            }
        }
        guard reader.passthrough.isEmpty else {
            throw ToolFailure(.badArgument, "bench fs takes no kernel arguments (nothing after --)")
        }
        return options
    }

    public static func main(_ arguments: [String], paths: Paths) -> Int32 {
        let options: Options
        let work = NSTemporaryDirectory() + "toro-bench-fs-\(getpid())"
        let source = work + "/source"
        defer { try? FileManager.default.removeItem(atPath: work) }
        do throws(ToolFailure) {
            options = try parse(arguments)
            try Installer.ensure(Installer.forBooting + Installer.e2fsprogs)
            let builder = KernelBuilder(paths: paths)
            for platform in GuestPlatform.allCases { try builder.build(platform, service: "fsbench") }
            _ = try FSBackend.executable(paths: paths)
            do { try generate(in: source) } catch {
                throw ToolFailure(.qemuFailed, "could not write the benchmark folder \(source): \(error)")
            }
        } catch {
            Console.error(error.message)
            return error.status.rawValue
        }
        var legacy = Figures(label: "legacy ext2/virtio-blk")
        var microvm = Figures(label: "microvm virtio-fs")
        var host = Figures(label: "host")
        var cached: [Double] = []
        var stayedCached = 0
        var failures: [String] = []
        Console.line("fs benchmark: \(options.runs) run(s); read a 64 MiB file whole (128 KiB reads), create \(fileCount) "
                     + "files of \(fileSize) bytes in a new folder and sync; fsbench on legacy and microvm (TCG, 1 CPU, "
                     + "--memory \(memoryMiB), each boot a fresh copy of the folder) and the host, interleaved")
        for run in 1...options.runs {
            for (platform, label) in [(GuestPlatform.legacy, legacy.label), (.microvm, microvm.label)] {
                Console.progress("run \(run)/\(options.runs): \(label)…")
                let copy = work + "/run\(run)-\(platform.rawValue)"
                switch boot(platform, source: source, copy: copy, paths: paths) {
                case .success(let figures):
                    if platform == .legacy { legacy.add(figures) } else { microvm.add(figures) }
                case .failure(let error):
                    failures.append("\(label), run \(run): \(error.message)")
                    if platform == .legacy { legacy.failures += 1 } else { microvm.failures += 1 }
                }
                try? FileManager.default.removeItem(atPath: copy)
            }
            Console.progress("run \(run)/\(options.runs): host…")
            do throws(ToolFailure) {
                let (cold, dropped) = try hostRead(source + "/big.bin", drop: true)
                let (warm, _) = try hostRead(source + "/big.bin", drop: false)
                let folder = work + "/host-out-\(run)"
                let (create, sync) = try hostCreate(in: folder)
                try? FileManager.default.removeItem(atPath: folder)
                host.read.append(cold); host.create.append(create); host.sync.append(sync)
                cached.append(warm)
                if !dropped { stayedCached += 1 }
            } catch {
                failures.append("host, run \(run): \(error.message)")
                host.failures += 1
            }
        }
        for line in table(legacy: legacy, microvm: microvm, host: host, hostCached: cached,
                          hostStayedCached: stayedCached) {
            Console.line(line)
        }
        for failure in failures.prefix(10) { Console.error(failure) }
        return failures.isEmpty ? 0 : 1
    }

    /// Writes `big.bin` (64 MiB of seeded pseudo-random bytes) into `folder`.
    public static func generate(in folder: String, size: Int = bigSize) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var state: UInt64 = 0xF5BE_4C11
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        guard let handle = FileHandle(forWritingAtPath: folder + "/big.bin")
                ?? (FileManager.default.createFile(atPath: folder + "/big.bin", contents: nil)
                    ? FileHandle(forWritingAtPath: folder + "/big.bin") : nil) else {
            throw ToolFailure(.qemuFailed, "cannot create \(folder)/big.bin")
        }
        defer { try? handle.close() }
        var written = 0
        while written < size {
            let count = min(chunk.count, size - written)
            chunk.withUnsafeMutableBytes { raw in
                let words = raw.bindMemory(to: UInt64.self)
                for i in 0..<(count / 8) {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    words[i] = state ^ (state >> 29)
                }
            }
            try handle.write(contentsOf: chunk[0..<count])
            written += count
        }
    }

    /// Boots fsbench on `platform` over a fresh copy of `source` and returns its figures.
    static func boot(_ platform: GuestPlatform, source: String, copy: String,
                     paths: Paths) -> Result<FSBenchGuestFigures, ToolFailure> {
        do {
            try FileManager.default.copyItem(atPath: source, toPath: copy)
        } catch {
            return .failure(ToolFailure(.qemuFailed, "could not copy the folder to \(copy): \(error)"))
        }
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var process = Subprocess([binary, "run", "--platform", platform.rawValue, "--service", "fsbench", "--share", copy,
                                  "--memory", "\(memoryMiB)", "--accel", "tcg", "--timeout", "\(timeout)"])
        process.environment = ["TORO_ROOT": paths.root, "TORO_NO_BUILD": "1"]
        process.mergeStderr = true
        process.captureLimit = 1 << 20
        process.timeout = Double(timeout + 300)
        let result = process.run()
        let figures = FSBenchGuestFigures.parse(result.output)
        guard result.exitCode == 0, let figures, figures.bytesRead == bigSize, figures.filesCreated == fileCount else {
            let tail = result.output.split(separator: "\n").suffix(8).joined(separator: "\n")
            return .failure(ToolFailure(.qemuFailed, "toro run ended with \(result.termination) without the figures; "
                                        + "its output ended with:\n" + tail))
        }
        return .success(figures)
    }

    /// Reads `path` whole in 128 KiB reads; the seconds, and whether the file had left the
    /// page cache before (`drop`: fdatasync and posix_fadvise(DONTNEED) first, then mincore).
    static func hostRead(_ path: String, drop: Bool) throws(ToolFailure) -> (Double, Bool) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ToolFailure(.qemuFailed, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var dropped = false
        if drop {
            _ = fdatasync(fd)
            _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
            dropped = residentPages(fd: fd, size: bigSize) == 0
        }
        var buffer = [UInt8](repeating: 0, count: readSize)
        var total = 0
        let begin = BackgroundProcess.monotonicNow()
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw ToolFailure(.qemuFailed, "read \(path): \(String(cString: strerror(errno)))")
            }
            total += count
        }
        let seconds = BackgroundProcess.monotonicNow() - begin
        guard total == bigSize else { throw ToolFailure(.qemuFailed, "read \(total) bytes of \(path), not \(bigSize)") }
        return (seconds, dropped)
    }

    /// How many pages of the first `size` bytes of `fd` are in the page cache (mincore);
    /// nil when it cannot tell.
    static func residentPages(fd: Int32, size: Int) -> Int? {
        guard let map = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else { return nil }
        defer { munmap(map, size) }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var vector = [UInt8](repeating: 0, count: (size + page - 1) / page)
        guard mincore(map, size, &vector) == 0 else { return nil }
        return vector.reduce(0) { $0 + Int($1 & 1) }
    }

    /// Creates `folder` and 1,000 files of 100 bytes in it, then fsyncs the folder; the
    /// seconds of each part.
    static func hostCreate(in folder: String) throws(ToolFailure) -> (Double, Double) {
        func failure(_ what: String) -> ToolFailure {
            ToolFailure(.qemuFailed, "\(what): \(String(cString: strerror(errno)))")
        }
        let content = [UInt8]((0..<fileSize).map { UInt8(ascii: "a") + UInt8($0 % 26) }.dropLast()) + [10]
        let begin = BackgroundProcess.monotonicNow()
        guard mkdir(folder, 0o755) == 0 else { throw failure("mkdir \(folder)") }
        for index in 0..<fileCount {
            let path = folder + "/f" + String(format: "%05d", index) + ".txt"
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            guard fd >= 0 else { throw failure("create \(path)") }
            let written = content.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard written == content.count else { throw failure("write \(path)") }
        }
        let created = BackgroundProcess.monotonicNow()
        let directory = open(folder, O_RDONLY | O_DIRECTORY)
        guard directory >= 0 else { throw failure("open \(folder)") }
        defer { close(directory) }
        guard fsync(directory) == 0 else { throw failure("fsync \(folder)") }
        return (created - begin, BackgroundProcess.monotonicNow() - created)
    }

    /// The table of medians and the ratios guest / host.
    static func table(legacy: Figures, microvm: Figures, host: Figures, hostCached: [Double],
                      hostStayedCached: Int) -> [String] {
        func column(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        func ms(_ value: Double?) -> String { value.map { String(format: "%.1f", $0 * 1000) } ?? "-" }
        func rate(_ value: Double?) -> String {
            value.map { $0 > 0 ? String(format: "%.1f", Double(bigSize) / 1_048_576 / $0) : "-" } ?? "-"
        }
        let median = BenchCommand.median
        let width = 27
        var lines = ["target".padding(toLength: width, withPad: " ", startingAt: 0)
                     + column("read ms", 10) + column("MiB/s", 8) + column("create ms", 11) + column("sync ms", 9)
                     + column("create+sync", 13) + column("read/host", 11) + column("create+sync/host", 18)]
        let hostRead = median(host.read), hostCreate = median(host.createAndSync)
        func ratio(_ value: Double?, _ base: Double?) -> String {
            guard let value, let base, base > 0 else { return "-" }
            return String(format: "%.1fx", value / base)
        }
        let hostLabel = hostStayedCached == 0 ? "host (page cache dropped)" : "host (read CACHED)"
        for figures in [legacy, microvm, host] {
            let read = median(figures.read), createAndSync = median(figures.createAndSync)
            let label = figures.label == host.label ? hostLabel : figures.label
            lines.append(label.padding(toLength: width, withPad: " ", startingAt: 0)
                         + column(ms(read), 10) + column(rate(read), 8) + column(ms(median(figures.create)), 11)
                         + column(ms(median(figures.sync)), 9) + column(ms(createAndSync), 13)
                         + column(figures.label == host.label ? "1.0x" : ratio(read, hostRead), 11)
                         + column(figures.label == host.label ? "1.0x" : ratio(createAndSync, hostCreate), 18))
        }
        let warm = median(hostCached)
        lines.append("host (read cached)".padding(toLength: width, withPad: " ", startingAt: 0)
                     + column(ms(warm), 10) + column(rate(warm), 8))
        lines.append("medians of \(max(legacy.read.count, microvm.read.count, host.read.count)) run(s), milliseconds; "
                     + "guest figures are the guest's own clock around each phase (no boot, no image build or "
                     + "write-back); TCG, 1 CPU, --memory \(memoryMiB); legacy: ext2 with 1 KiB blocks over a "
                     + "1024-block buffer cache; microvm: virtio-fs through toro-fs; host sync = fsync of the folder")
        if hostStayedCached > 0 {
            lines.append("note: in \(hostStayedCached) run(s) big.bin stayed in the host's page cache after "
                         + "posix_fadvise(DONTNEED), so the host's read was cached")
        }
        lines.append("guest / host (medians): legacy read \(ratio(median(legacy.read), hostRead)), create+sync "
                     + "\(ratio(median(legacy.createAndSync), hostCreate)); microvm read \(ratio(median(microvm.read), hostRead)), "
                     + "create+sync \(ratio(median(microvm.createAndSync), hostCreate)); "
                     + "against the cached host read: legacy \(ratio(median(legacy.read), warm)), "
                     + "microvm \(ratio(median(microvm.read), warm))")
        return lines
    }
}
