// `toro compare`: boot one service on MicroVM, then on Legacy, with the same options (and
// the Compat scenario's, when Compat/<service>/scenario exists), normalise both consoles
// into service transcripts, and report whether they match each other and the expected
// transcript (Compat/<service>/expected, else the `expected` file in the service's own
// folder, or --expect FILE). Exit 0 only when all match; without an expected transcript,
// a run whose service failed or never printed `ready:` is a failure, not a match.
//
// With `--share DIR[:ro]` each platform gets its own copy of DIR (CompareShares.swift: toro-fs
// on microvm, an ext2 image on legacy), DIR itself is never changed, and the two copies must
// end identical too.
//
// Over the network (CompareNetwork.swift): a socket service gets its socket device on both
// platforms (toro-vsock on microvm, virtio-net on QEMU's user networking on legacy), with
// the user's `-p` forwards; a scenario with `client:` runs its client script against each
// platform's forwarded port after `ready:`, and each platform's replies must be what the
// script expects and the same as the other's (ClientScript.swift, ClientRunner.swift).
//
// The differential boot tests run this same command; there is no second code path.

import Foundation

public enum CompareCommand {
    /// The result of comparing two (or three) transcripts; `report` is what is printed.
    public struct Verdict: Sendable {
        public var matches: Bool
        public var report: [String]
    }

    public static func main(_ arguments: [String], paths: Paths) -> Int32 {
        do throws(ToolFailure) {
            let (given, expectFile) = try RunOptions.parse(arguments, command: "compare",
                                                           workingDirectory: Paths.userDirectory())
            var options = given
            let chosen = try scenario(for: given, compat: paths.compat)
            if let chosen { options = try chosen.scenario.applied(to: given, folder: "\(paths.compat)/\(chosen.name)") }
            // The client script, and the user's -p checked against its port, before anything is built.
            var client: ClientScript? = nil
            var clientPort: Int? = nil
            if let chosen, let script = try chosen.scenario.clientScript(folder: "\(paths.compat)/\(chosen.name)", name: chosen.name) {
                client = script
                clientPort = chosen.scenario.clientPort ?? Scenario.defaultClientPort
                if !options.ports.isEmpty { _ = try CompareNetwork.forwards(given: options.ports, clientPort: clientPort) }
            }
            var expected: (name: String, lines: [String])? = nil
            let expectedPath = expectFile ?? chosen.map { "\(paths.compat)/\($0.name)/expected" } ?? ""
            if let text = try? String(contentsOfFile: expectedPath, encoding: .utf8) {
                expected = (expectFile ?? "Compat/\(chosen?.name ?? given.service)/expected", Transcript.parse(text))
            } else if expectFile != nil {
                throw ToolFailure(.badArgument, "--expect: cannot read '\(expectedPath)'")
            } else if let info = Services.named(options.service),
                      let text = try? String(contentsOfFile: paths.serviceFolder(info) + "/expected", encoding: .utf8) {
                // A service's own test (./toro new writes one): the transcript in its folder.
                expected = ("Sources/Services/\(info.kind.rawValue)/\(info.name)/expected", Transcript.parse(text))
            }
            for platform in GuestPlatform.allCases {
                try options.checkMemory(minimumMiB: ELFImage.minimumMemoryMiB(path: paths.image(platform, service: options.service)))
            }
            let accelerator = try options.accel.resolve(on: HostFacts.probe())
            try Installer.ensure(Installer.forBooting + (options.shares.isEmpty ? [] : Installer.e2fsprogs))
            let builder = KernelBuilder(paths: paths)
            let shares = try options.shares.first.map { (share) throws(ToolFailure) in try CompareShares.prepare(share) }
            var transcripts: [[String]] = []
            var replies: [ClientOutcome] = []
            do throws(ToolFailure) {
                for platform in GuestPlatform.allCases {
                    var platformOptions = options
                    platformOptions.platform = platform
                    platformOptions.ports = try CompareNetwork.forwards(given: options.ports, clientPort: clientPort)
                    let image = try builder.build(platform, service: options.service)
                    var command = QEMUCommand(options: platformOptions, accelerator: accelerator, kernelPath: image)
                    let finish = try shares?.attach(platform, to: &command, paths: paths)
                    let vsock: HostBackend?
                    let front: PortFront?
                    do throws(ToolFailure) {
                        vsock = try CompareNetwork.attachVsock(platformOptions, to: &command, paths: paths)
                        front = try LegacyFront.attach(to: &command)
                    } catch {
                        _ = finish?()
                        throw error
                    }
                    let forwards = platformOptions.ports.map { "127.0.0.1:\($0.host) -> guest port \($0.guest)" }
                    Console.progress("booting \(options.service) on \(platform.rawValue)"
                                     + (forwards.isEmpty ? "" : " (\(forwards.joined(separator: ", ")))") + "…")
                    if let client, let port = platformOptions.ports.first(where: { $0.guest == clientPort })?.host {
                        let run = CompareNetwork.boot(command, service: options.service, timeout: options.timeoutSeconds,
                                                      script: client, port: port)
                        LegacyFront.finish(front)
                        vsock?.stop()
                        if let line = finish?() { Console.progress("\(platform.rawValue): \(line)") }
                        if let message = run.message { Console.progress("\(platform.rawValue): \(message)") }
                        transcripts.append(CompareNetwork.transcript(run))
                        replies.append(run.client)
                    } else {
                        let outcome = Boot.run(command, timeout: options.timeoutSeconds, echo: false)
                        LegacyFront.finish(front)
                        vsock?.stop()
                        if let line = finish?() { Console.progress("\(platform.rawValue): \(line)") }
                        if let message = outcome.message { Console.progress("\(platform.rawValue): \(message)") }
                        transcripts.append(Transcript.normalise(outcome.output, status: outcome.status.rawValue))
                    }
                }
            } catch {
                if let shares { DiskImage.discard(shares.directory) }
                throw error
            }
            let clients = client.map { (file: $0.file, microvm: replies[0], legacy: replies[1]) }
            var verdict = compare(microvm: transcripts[0], legacy: transcripts[1], expected: expected, clients: clients)
            if let shares {
                let folders = shares.compareCopies()
                verdict.report.insert(contentsOf: folders.report, at: verdict.report.count - 1)
                if !folders.matches {
                    verdict.report[verdict.report.count - 1] = verdict.matches
                        ? "compare: the shared folders differ" : "compare: transcripts and shared folders differ"
                    verdict.matches = false
                }
            }
            for line in verdict.report { Console.line(line) }
            return verdict.matches ? 0 : 1
        } catch {
            Console.error(error.message)
            return error.status.rawValue
        }
    }

    /// The Compat scenario for these options: among the folders whose scenario names the
    /// service, the one for the CPU count given with --cpus; without --cpus, the folder
    /// named after the service, else the first by name. nil when none fits.
    public static func scenario(for options: RunOptions, compat: String) throws(ToolFailure) -> (name: String, scenario: Scenario)? {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: compat)) ?? []).sorted()
        var candidates: [(name: String, scenario: Scenario)] = []
        for name in names {
            guard let text = try? String(contentsOfFile: "\(compat)/\(name)/scenario", encoding: .utf8) else { continue }
            let scenario = try Scenario.parse(text, file: "Compat/\(name)/scenario")
            if (scenario.service ?? name) == options.service { candidates.append((name, scenario)) }
        }
        if options.given.contains("--cpus") {
            return candidates.first { ($0.scenario.cpus ?? 1) == options.cpus }
        }
        return candidates.first { $0.name == options.service } ?? candidates.first
    }

    /// Compares the two platforms' transcripts with each other and with `expected`, and,
    /// with a client script, each platform's replies with what the script expects and with
    /// each other. With no expected transcript, a run that never printed `ready:` or ended
    /// with a status other than 0 (or stopped after its client) is a failure even when
    /// both platforms failed alike.
    public static func compare(microvm: [String], legacy: [String],
                               expected: (name: String, lines: [String])?,
                               clients: (file: String, microvm: ClientOutcome, legacy: ClientOutcome)? = nil) -> Verdict {
        var report: [String] = []
        var matches = true
        var failed = false
        if microvm == legacy {
            report.append("match: microvm and legacy transcripts are identical (\(microvm.count) lines):")
            report += microvm.map { "    " + $0 }
        } else {
            matches = false
            report.append("DIFFER: microvm and legacy transcripts differ:")
            report.append(Diff.unified(microvm, legacy, oldName: "microvm", newName: "legacy"))
        }
        if let expected {
            for (name, lines) in [("microvm", microvm), ("legacy", legacy)] {
                if lines == expected.lines {
                    report.append("match: \(name) matches \(expected.name)")
                } else {
                    matches = false
                    report.append("DIFFER: \(name) differs from \(expected.name):")
                    report.append(Diff.unified(expected.lines, lines, oldName: expected.name, newName: name))
                }
            }
        } else {
            report.append("note: no expected transcript (Compat/<service>/expected, the service folder's expected, or --expect FILE); compared the platforms only")
            // Without a transcript recording it, two runs that failed alike are no match:
            // "both said 'no shared folder'" must not read as success.
            for (name, lines) in [("microvm", microvm), ("legacy", legacy)] {
                let ready = lines.contains { $0.hasPrefix("ready: ") }
                let status = lines.last.flatMap { $0.hasPrefix("exit status: ") ? String($0.dropFirst(13)) : nil } ?? "none"
                if !ready || (status != "0" && lines.last != CompareNetwork.stoppedLine) {
                    failed = true
                    report.append("FAILED: on \(name) the service " + (ready ? "" : "never printed ready: and ")
                                  + "ended with exit status \(status)")
                }
            }
        }
        var repliesDiffer = false
        if let clients {
            let replies = compareReplies(file: clients.file, microvm: clients.microvm, legacy: clients.legacy)
            report += replies.report
            repliesDiffer = !replies.matches
        }
        let transcriptsDiffer = !matches
        if failed || repliesDiffer { matches = false }
        report.append(matches ? "compare: everything matches"
                      : failed && microvm == legacy && !repliesDiffer ? "compare: the service failed (no expected transcript records that status)"
                      : transcriptsDiffer && repliesDiffer ? "compare: transcripts and replies differ"
                      : repliesDiffer ? "compare: replies differ"
                      : "compare: transcripts differ")
        return Verdict(matches: matches, report: report)
    }

    /// The client's replies on each platform against the script's expectations (each
    /// failed step on a line of its own), then the two platforms' replies line by line.
    public static func compareReplies(file: String, microvm: ClientOutcome, legacy: ClientOutcome) -> Verdict {
        var report: [String] = []
        var matches = true
        for (name, outcome) in [("microvm", microvm), ("legacy", legacy)] {
            if outcome.mismatches.isEmpty {
                report.append("match: \(name)'s replies are what \(file) expects (\(outcome.stepsRun) steps)")
            } else {
                matches = false
                report.append("DIFFER: \(name)'s replies are not what \(file) expects (\(outcome.mismatches.count) "
                              + (outcome.mismatches.count == 1 ? "step" : "steps") + "):")
                report += outcome.mismatches.prefix(30).map { "    " + $0 }
                if outcome.mismatches.count > 30 { report.append("    … and \(outcome.mismatches.count - 30) more") }
            }
        }
        if microvm.replies == legacy.replies {
            report.append("match: microvm and legacy replies are identical (\(microvm.replies.count) lines)")
        } else {
            matches = false
            report.append("DIFFER: microvm and legacy replies differ:")
            report.append(Diff.unified(microvm.replies, legacy.replies, oldName: "microvm", newName: "legacy"))
        }
        return Verdict(matches: matches, report: report)
    }
}
