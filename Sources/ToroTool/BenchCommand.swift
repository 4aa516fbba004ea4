// `toro bench boot`: how long a Toro boot takes next to a do-nothing kernel on the same
// platform and QEMU command line, how big the images are, and how little memory hello
// needs. Figures only: a slow run never fails the command (a boot that fails does).
//
// Runs are interleaved (microvm hello, microvm do-nothing, legacy hello, legacy
// do-nothing, then again) so that noise on the host hits every kernel alike. Wall time
// is measured from spawning QEMU to its exit, always under TCG with 64 MiB and the
// `--cpus N` given (default 1, validated as `run` validates it), which every boot uses:
// hello, the do-nothing kernels (their QEMU and firmware start the same CPUs, which the
// do-nothing kernel leaves asleep) and the smallest-memory search. The search uses N too
// because each CPU costs the kernel memory of its own (stacks, per-CPU state), so the
// minimum for 1 CPU says nothing about N; `bench boot` alone gives the 1-CPU figure.
//
// `toro bench kv` (the kv service against a host-native server) lives in KVBench.swift,
// `toro bench web` (static-web against python3 -m http.server) in WebBench.swift,
// `toro bench fs` (the fsbench probe on both platforms against the host) in FSBench.swift.

import Foundation

public enum BenchCommand {
    struct Subject {
        var label: String
        var platform: GuestPlatform
        var image: String
        var isNull: Bool
        var seconds: [Double] = []
        var failures = 0
    }

    static let memoryMiB = 64

    /// The options of `bench boot`.
    public struct Options: Equatable, Sendable {
        public var runs = 11
        public var cpus = 1
        public init() {}
    }

    /// Parses `bench`'s arguments (the first must be the benchmark's name, `boot`).
    public static func parse(_ arguments: [String]) throws(ToolFailure) -> Options {
        guard arguments.first == "boot" else {
            throw ToolFailure(.badArgument, "bench needs a benchmark name: ./toro bench boot [--runs N] [--cpus N]")
        }
        var options = Options()
        var reader = ArgumentReader(Array(arguments.dropFirst()))
        while let flag = try reader.nextFlag() {
            switch flag {
            case "--runs":
                options.runs = try ArgumentReader.number(try reader.value(for: flag), flag: flag, range: 1...1000,
                                                         what: "a number of runs")
            case "--cpus":
                // Exactly `run`'s validation and messages (1…RunOptions.maxCPUs).
                options.cpus = try RunOptions.parse([flag, try reader.value(for: flag)]).0.cpus
            default:
                throw ArgumentReader.unknown(flag, command: "bench boot")
            }
        }
        guard reader.passthrough.isEmpty else {
            throw ToolFailure(.badArgument, "bench boot takes no kernel arguments (nothing after --)")
        }
        return options
    }

    static func cpuCount(_ cpus: Int) -> String { cpus == 1 ? "1 CPU" : "\(cpus) CPUs" }

    public static func main(_ arguments: [String], paths: Paths) -> Int32 {
        if arguments.first == "kv" { return KVBench.main(Array(arguments.dropFirst()), paths: paths) }
        if arguments.first == "web" { return WebBench.main(Array(arguments.dropFirst()), paths: paths) }
        if arguments.first == "fs" { return FSBench.main(Array(arguments.dropFirst()), paths: paths) }
        if arguments.first == "soak" { return SoakBench.main(Array(arguments.dropFirst()), paths: paths) }
        do throws(ToolFailure) {
            let options = try parse(arguments)
            let runs = options.runs, cpus = options.cpus
            try Installer.ensure(Installer.forBooting)
            let builder = KernelBuilder(paths: paths)
            var subjects: [Subject] = []
            for platform in GuestPlatform.allCases {
                subjects.append(Subject(label: "\(platform.rawValue) hello", platform: platform,
                                        image: try builder.build(platform, service: "hello"), isNull: false))
                subjects.append(Subject(label: "\(platform.rawValue) do-nothing", platform: platform,
                                        image: try builder.buildNull(platform), isNull: true))
            }
            Console.line("boot benchmark: \(runs) runs of each kernel, interleaved, TCG, \(memoryMiB) MiB, \(cpuCount(cpus))")
            for round in 1...runs {
                for index in subjects.indices {
                    let (ok, seconds) = boot(subjects[index], memoryMiB: memoryMiB, cpus: cpus)
                    if ok { subjects[index].seconds.append(seconds) } else { subjects[index].failures += 1 }
                }
                if round % 5 == 0 || round == runs { Console.progress("round \(round)/\(runs) done") }
            }
            for line in table(subjects) { Console.line(line) }
            for line in try imageSizes(builder: builder) { Console.line(line) }
            var minimums: [String] = []
            for platform in GuestPlatform.allCases {
                Console.progress("searching the smallest --memory that boots hello on \(platform.rawValue) with \(cpuCount(cpus))…")
                let found = smallestMemory(image: paths.image(platform, service: "hello"), platform: platform, cpus: cpus)
                minimums.append("\(platform.rawValue) " + (found.map { "\($0) MiB" } ?? "none up to \(memoryMiB) MiB"))
            }
            Console.line("smallest --memory with which hello boots and exits 0 (searched with \(cpuCount(cpus)), "
                         + "like the boots above, since each CPU needs memory of its own): "
                         + minimums.joined(separator: ", "))
            return subjects.contains { $0.failures > 0 } ? 1 : 0
        } catch {
            Console.error(error.message)
            return error.status.rawValue
        }
    }

    /// One boot of `subject`; success means guest status 0 (a do-nothing kernel prints no
    /// `exit:` line, so QEMU's code 1 is its success).
    static func boot(_ subject: Subject, memoryMiB: Int, cpus: Int, timeout: Int = 30) -> (Bool, Double) {
        let command = QEMUCommand(platform: subject.platform, accelerator: .tcg, memoryMiB: memoryMiB, cpus: cpus,
                                  kernelPath: subject.image, kernelCommandLine: "service=hello")
        var process = Subprocess(command.arguments)
        process.timeout = Double(timeout)
        let result = process.run()
        if subject.isNull { return (result.exitCode == 1, result.seconds) }
        let (status, _) = Boot.interpret(result.termination, output: result.output, errors: result.errorOutput,
                                         timeout: timeout)
        return (status == .success, result.seconds)
    }

    /// Boots hello directly through QEMU (no CLI minimum) with 1, 2, 3… MiB until it
    /// exits 0; nil when nothing up to the benchmark's memory works.
    /// The size of every service's image on each platform (stripped, as QEMU loads it), in
    /// KiB, with the device kinds whose drivers it links.
    static func imageSizes(builder: KernelBuilder) throws(ToolFailure) -> [String] {
        func column(_ text: String, _ width: Int) -> String {
            text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
        }
        var lines = ["image sizes (KiB, stripped; each image is the kernel and one service):",
                     column("service", 16) + GuestPlatform.allCases.map { column($0.rawValue, 10) }.joined() + "devices"]
        for service in Services.all {
            var line = column(service.name, 16)
            for platform in GuestPlatform.allCases {
                let image = try builder.build(platform, service: service.name)
                let size = (try? FileManager.default.attributesOfItem(atPath: image)[.size] as? Int) ?? 0
                line += column(String(format: "%.1f", Double(size) / 1024), 10)
            }
            lines.append(line + (service.devices.isEmpty ? "none" : service.devices.joined(separator: ", ")))
        }
        return lines
    }

    static func smallestMemory(image: String, platform: GuestPlatform, cpus: Int) -> Int? {
        let subject = Subject(label: "", platform: platform, image: image, isNull: false)
        for memory in 1...memoryMiB where boot(subject, memoryMiB: memory, cpus: cpus, timeout: 10).0 { return memory }
        return nil
    }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    static func table(_ subjects: [Subject]) -> [String] {
        func ms(_ value: Double?) -> String { value.map { String(format: "%.1f", $0 * 1000) } ?? "-" }
        func column(_ text: String, _ width: Int) -> String {
            String(repeating: " ", count: max(0, width - text.count)) + text
        }
        var lines = ["kernel".padding(toLength: 20, withPad: " ", startingAt: 0)
                     + column("median ms", 11) + column("min ms", 9) + column("max ms", 9)
                     + column("failed", 8) + column("image bytes", 13) + column("KiB", 8)]
        for subject in subjects {
            let size = (try? FileManager.default.attributesOfItem(atPath: subject.image)[.size] as? Int) ?? 0
            lines.append(subject.label.padding(toLength: 20, withPad: " ", startingAt: 0)
                         + column(ms(median(subject.seconds)), 11) + column(ms(subject.seconds.min()), 9)
                         + column(ms(subject.seconds.max()), 9) + column("\(subject.failures)", 8)
                         + column("\(size)", 13) + column(String(format: "%.1f", Double(size) / 1024), 8))
        }
        var ratios: [String] = []
        for platform in GuestPlatform.allCases {
            let hello = subjects.first { $0.platform == platform && !$0.isNull }.flatMap { median($0.seconds) }
            let null = subjects.first { $0.platform == platform && $0.isNull }.flatMap { median($0.seconds) }
            if let hello, let null, null > 0 {
                ratios.append("\(platform.rawValue) \(String(format: "%.2f", hello / null))x")
            } else {
                ratios.append("\(platform.rawValue) -")
            }
        }
        lines.append("hello / do-nothing (median boot time): " + ratios.joined(separator: ", "))
        return lines
    }
}

/// `--runs N`, `--requests N` and `--platform legacy|microvm|all`, what the service
/// benchmarks (`bench kv`, `bench web`) take: each number's default and accepted range come
/// from the benchmark; the platforms default to both.
enum BenchArguments {
    static func parse(_ arguments: [String], command: String, runs: (Int, ClosedRange<Int>),
                      requests: (Int, ClosedRange<Int>))
        throws(ToolFailure) -> (runs: Int, requests: Int, platforms: [GuestPlatform]) {
        var result = (runs: runs.0, requests: requests.0, platforms: GuestPlatform.allCases)
        var reader = ArgumentReader(arguments)
        while let flag = try reader.nextFlag() {
            switch flag {
            case "--runs":
                result.runs = try ArgumentReader.number(try reader.value(for: flag), flag: flag, range: runs.1,
                                                        what: "a number of runs")
            case "--requests":
                result.requests = try ArgumentReader.number(try reader.value(for: flag), flag: flag, range: requests.1,
                                                            what: "a number of requests")
            case "--platform":
                let name = try reader.value(for: flag)
                if name == "all" {
                    result.platforms = GuestPlatform.allCases
                } else if let platform = GuestPlatform(rawValue: name) {
                    result.platforms = [platform]
                } else {
                    throw ToolFailure(.badArgument, "unknown platform '\(name)' (choose \(GuestPlatform.names), all)")
                }
            default:
                throw ArgumentReader.unknown(flag, command: command)
            }
        }
        guard reader.passthrough.isEmpty else {
            throw ToolFailure(.badArgument, "\(command) takes no kernel arguments (nothing after --)")
        }
        return result
    }

    /// What each platform's guest is reached through, for the benchmarks' first line.
    static func reachedThrough(_ platform: GuestPlatform) -> String {
        switch platform {
        case .microvm: "microvm: vsock through toro-vsock"
        case .legacy: "legacy: virtio-net and Toro's TCP/IP behind QEMU's user networking"
        }
    }

    /// Boots `service` on each of `platforms` (BenchGuest); a platform whose guest does
    /// not come up is reported on stderr and left out, the others go on. Throws when a
    /// build fails or no guest came up.
    static func startGuests(service: String, platforms: [GuestPlatform], paths: Paths,
                            disk: (GuestPlatform) throws(ToolFailure) -> (share: String?, disk: String?))
        throws(ToolFailure) -> (guests: [(platform: GuestPlatform, process: BackgroundProcess)], failed: [GuestPlatform]) {
        var guests: [(platform: GuestPlatform, process: BackgroundProcess)] = []
        var failed: [GuestPlatform] = []
        var lastFailure: ToolFailure? = nil
        for platform in platforms {
            do throws(ToolFailure) {
                let storage = try disk(platform)
                guests.append((platform, try BenchGuest.start(service: service, platform: platform, share: storage.share,
                                                               disk: storage.disk, paths: paths)))
            } catch {
                if error.status == .buildFailed || error.status == .missingTool {
                    for guest in guests { _ = guest.process.stop() }
                    throw error
                }
                Console.error("\(platform.rawValue): \(error.message)")
                failed.append(platform)
                lastFailure = error
            }
        }
        if guests.isEmpty, let lastFailure { throw lastFailure }
        return (guests, failed)
    }
}
