// The CPU exception report: what the kernel prints when an exception reaches it.
//
// The stubs in Arch/isr.S build an `ExceptionFrame` and call `toro_exception`. Vectors
// 0-31 are CPU exceptions (SDM vol. 3, table 6-1): the report names the vector, the error
// code, RIP, CR2 and a frame-pointer backtrace, then the kernel exits with
// `ExitStatus.panic`. Vectors 32-255 are interrupts; until a platform installs a handler
// for one, it is logged and the CPU carries on.

/// Mirrors `ArchExceptionFrame` in Arch/include/arch.h (lowest address first).
public struct ExceptionFrame {
    public var cr2: UInt64
    public var r15, r14, r13, r12, r11, r10, r9, r8: UInt64
    public var rbp, rdi, rsi, rdx, rcx, rbx, rax: UInt64
    public var vector, errorCode: UInt64
    public var rip, cs, rflags, rsp, ss: UInt64
}

public enum ExceptionReport {
    /// The stack the backtrace may read; a frame pointer outside it ends the walk.
    nonisolated(unsafe) public static var stack = PhysicalRange(start: 0, end: 0)
    nonisolated(unsafe) static var reporting = false
    /// Handlers for interrupt vectors (32-255), installed by a platform.
    nonisolated(unsafe) public static var interruptHandler: ((UInt64) -> Bool)? = nil
    /// Acknowledges an interrupt no handler took (EOI), installed by a platform.
    nonisolated(unsafe) public static var acknowledgeUnhandled: ((UInt64) -> Void)? = nil

    static func name(_ vector: UInt64) -> StaticString {
        switch vector {
        case 0: return "#DE divide error"
        case 1: return "#DB debug"
        case 2: return "NMI"
        case 3: return "#BP breakpoint"
        case 4: return "#OF overflow"
        case 5: return "#BR bound range"
        case 6: return "#UD invalid opcode"
        case 7: return "#NM device not available"
        case 8: return "#DF double fault"
        case 10: return "#TS invalid TSS"
        case 11: return "#NP segment not present"
        case 12: return "#SS stack fault"
        case 13: return "#GP general protection"
        case 14: return "#PF page fault"
        case 16: return "#MF x87 floating point"
        case 17: return "#AC alignment check"
        case 18: return "#MC machine check"
        case 19: return "#XM SIMD floating point"
        case 20: return "#VE virtualization"
        case 21: return "#CP control protection"
        default: return "reserved"
        }
    }

    /// Handles one exception or interrupt. Returns only for interrupts.
    public static func handle(_ frame: ExceptionFrame) {
        if frame.vector >= 32 {
            if let handler = interruptHandler, handler(frame.vector) { return }
            Log.timestamp()
            Log.write("interrupt: unexpected vector ")
            Log.decimal(frame.vector)
            Log.write(", acknowledged and ignored\n")
            acknowledgeUnhandled?(frame.vector)
            return
        }
        if reporting {
            Log.write("\nexception: vector ")
            Log.decimal(frame.vector)
            Log.write(" while reporting an exception\n")
            Kernel.cpu?.exit(.panic)
            while true {}
        }
        reporting = true
        report(frame)
        Log.timestamp()
        Log.write("exit: 3\n")
        Kernel.cpu?.exit(.panic)
        while true {}
    }

    static func report(_ frame: ExceptionFrame) {
        Log.timestamp()
        Log.write("exception: vector ")
        Log.decimal(frame.vector)
        Log.write(" (")
        Log.write(name(frame.vector))
        Log.write(") error ")
        Log.hex(frame.errorCode, digits: 4)
        Log.put(10)
        Log.timestamp()
        Log.write("exception: rip=")
        Log.hex(frame.rip)
        Log.write(" cr2=")
        Log.hex(frame.cr2)
        Log.write(" rsp=")
        Log.hex(frame.rsp)
        Log.write(" rbp=")
        Log.hex(frame.rbp)
        Log.put(10)
        if frame.vector == 14 && ThreadStack.isGuardPage(frame.cr2) {
            Log.timestamp()
            Log.write("exception: stack overflow: the address is a thread stack's guard page\n")
        }
        if frame.vector == 14 {
            Log.timestamp()
            Log.write("exception: page fault on ")
            Log.write(frame.errorCode & 2 != 0 ? "write" : "read")
            Log.write(frame.errorCode & 1 != 0 ? " (protection violation)" : " (page not present)")
            Log.write(frame.errorCode & 16 != 0 ? ", instruction fetch\n" : "\n")
        }
        Log.timestamp()
        Log.write("exception: backtrace")
        Log.put(32)
        Log.hex(frame.rip)
        var rbp = frame.rbp
        var depth = 0
        // Walk only the running thread's own stack (or the boot stack), never a guess.
        var bounds = stack
        if let thread = Scheduler.runningThreadIfAny, let threadStack = thread.stack {
            bounds = PhysicalRange(start: threadStack.bottom, end: threadStack.top)
        }
        while depth < 16, rbp & 7 == 0, rbp >= bounds.start, rbp + 16 <= bounds.end {
            guard let words = UnsafePointer<UInt64>(bitPattern: UInt(rbp)) else { break }
            let returnAddress = words[1]
            if returnAddress == 0 { break }
            Log.put(32)
            Log.hex(returnAddress)
            let next = words[0]
            if next <= rbp { break }  // frames grow towards higher addresses
            rbp = next
            depth += 1
        }
        Log.put(10)
    }
}

#if hasFeature(Embedded)
@_cdecl("toro_exception")
func toroException(_ frame: UnsafeMutableRawPointer) {
    ExceptionReport.handle(frame.load(as: ExceptionFrame.self))
}
#endif
