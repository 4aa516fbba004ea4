// `toro run`: validate, install what is missing, build, boot, and exit with the guest's
// status (see ExitStatus.swift for the table). `toro build` lives here too: it is the
// build half of run.

public enum RunCommand {
    public static func main(_ arguments: [String], paths: Paths) -> Int32 {
        do throws(ToolFailure) {
            let (options, _) = try RunOptions.parse(arguments, command: "run",
                                                    workingDirectory: Paths.userDirectory())
            try options.checkMemory(minimumMiB: ELFImage.minimumMemoryMiB(path: paths.image(options.platform)))
            let accelerator = try options.accel.resolve(on: HostFacts.probe())
            if !options.printCommand { try Installer.ensure(Installer.forBooting) }
            let image = try KernelBuilder(paths: paths).build(options.platform)
            let command = QEMUCommand(options: options, accelerator: accelerator, kernelPath: image)
            if options.printCommand {
                Console.line(command.shellLine)
                return 0
            }
            Console.progress("booting \(options.service) on \(options.platform.rawValue) (\(accelerator.rawValue), \(options.cpus) CPU, \(options.memoryMiB) MiB)")
            let outcome = Boot.run(command, timeout: options.timeoutSeconds, echo: true)
            if let message = outcome.message { Console.error(message) }
            return outcome.status.rawValue
        } catch {
            Console.error(error.message)
            return error.status.rawValue
        }
    }
}

public enum BuildCommand {
    /// `toro build [--platform microvm|legacy|all]`: progress on stderr, then each image's
    /// path on stdout.
    public static func main(_ arguments: [String], paths: Paths) -> Int32 {
        do throws(ToolFailure) {
            var platforms = GuestPlatform.allCases
            var reader = ArgumentReader(arguments)
            while let flag = try reader.nextFlag() {
                guard flag == "--platform" else { throw ArgumentReader.unknown(flag, command: "build") }
                let name = try reader.value(for: flag)
                if name == "all" { platforms = GuestPlatform.allCases; continue }
                guard let platform = GuestPlatform(rawValue: name) else {
                    throw ToolFailure(.badArgument, "unknown platform '\(name)' (choose \(GuestPlatform.names), all)")
                }
                platforms = [platform]
            }
            if !reader.passthrough.isEmpty {
                throw ToolFailure(.badArgument, "build takes no kernel arguments")
            }
            let builder = KernelBuilder(paths: paths)
            let images = try platforms.map { platform throws(ToolFailure) in try builder.build(platform) }
            for image in images { Console.line(image) }
            return 0
        } catch {
            Console.error(error.message)
            return error.status.rawValue
        }
    }
}
