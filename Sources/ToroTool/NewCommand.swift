// `toro new NAME`: a new service from the template, in one new folder and nothing else:
//
//   Sources/Services/Applications/NAME/NAME.swift   the entry point and its one-line summary
//   Sources/Services/Applications/NAME/expected     its test: the transcript both platforms
//                                                   must print (`toro compare` and the boot
//                                                   tests check it)
//
// Package.swift and `toro services` find the folder by themselves, so `toro run --service
// NAME` (either platform), `toro compare --service NAME` and `toro test` take it at once.

import Foundation

public enum NewCommand {
    public static func main(_ arguments: [String], paths: Paths) -> Int32 {
        do throws(ToolFailure) {
            let created = try create(arguments, root: paths.root)
            for file in created { Console.line("created \(file)") }
            let name = arguments[0]
            Console.line("""
                next: ./toro run --service \(name)                      (microvm)
                      ./toro run --platform legacy --service \(name)    (the same service on legacy)
                      ./toro compare --service \(name)                  (both, checked against its expected transcript)
                """)
            return 0
        } catch {
            Console.error(error.message)
            return error.status.rawValue
        }
    }

    /// Writes the template for the service `arguments[0]`; returns the files, relative to `root`.
    public static func create(_ arguments: [String], root: String) throws(ToolFailure) -> [String] {
        guard arguments.count == 1, let name = arguments.first, !name.hasPrefix("-") else {
            throw ToolFailure(.badArgument, "new takes one argument, the service's name (e.g. ./toro new greeter)")
        }
        guard Services.isValidName(name) else {
            throw ToolFailure(.badArgument, "'\(name)' is not a service name: lowercase letters, digits and '-', starting with a letter, at most 40")
        }
        let reserved = ["all", "core", "wire", "virtio", "drivers", "pc", "microvm", "legacy"]
        let taken = Services.catalog(root: root).compactMap { try? $0.get().name }
        guard !taken.contains(name), !reserved.contains(name) else {
            throw ToolFailure(.badArgument, "a service or module named '\(name)' already exists; see ./toro services")
        }
        let relative = "Sources/Services/Applications/\(name)"
        let folder = root + "/" + relative
        guard !FileManager.default.fileExists(atPath: folder) else {
            throw ToolFailure(.badArgument, "\(relative) already exists")
        }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try source(name).write(toFile: "\(folder)/\(name).swift", atomically: true, encoding: .utf8)
            try expected(name).write(toFile: "\(folder)/expected", atomically: true, encoding: .utf8)
        } catch {
            throw ToolFailure(.badArgument, "cannot write \(relative): \(error)")
        }
        return ["\(relative)/\(name).swift", "\(relative)/expected"]
    }

    /// The template's Swift file: a service that uses the kernel's API (log, threads, an
    /// event, sleep) and prints a transcript that is the same on both platforms.
    static func source(_ name: String) -> String {
        """
        // `\(name)`: a Toro service (made by `./toro new \(name)`). It uses only the kernel's API:
        // the log, threads, an event, sleep and the exit status (README, "Write your own service").
        // Its test is `expected` beside this file: the transcript both platforms must print.
        import Core

        @_silgen_name("toro_service")
        public func service() -> Service {
            Service(name: "\(name)",
                    summary: "greets from whichever platform runs it, waits for a helper thread, then exits 0",
                    devices: []) { context in
                context.ready()
                Log.write("\(name): hello from ")
                Log.write(context.platformName)
                Log.put(10)
                // A second thread (on the last CPU) sleeps, then signals the service's thread.
                let done = Event()
                var answer = 0
                let helper = Scheduler.spawn(on: context.cpuCount - 1) {
                    Scheduler.sleep(milliseconds: 10)
                    answer = 6 * 7
                    done.signal()
                }
                guard helper != nil else {
                    Log.write("\(name): no memory for a thread\\n")
                    return .serviceFailed
                }
                done.wait()
                Log.write("\(name): the helper thread answered ")
                Log.decimal(answer)
                Log.put(10)
                return .success
            }
        }

        """
    }

    /// The transcript the template prints on both platforms (Transcript.swift's form).
    static func expected(_ name: String) -> String {
        """
        ready: \(name)
        \(name): hello from <platform>
        \(name): the helper thread answered 42
        exit status: 0

        """
    }
}
