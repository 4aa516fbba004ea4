// QEMU's isa-debug-exit device, which `toro run` adds to both machines
// (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`): a 32-bit write of `status` to its
// port ends QEMU with exit status (status << 1) | 1 (QEMU hw/misc/debugexit.c).
//
// Rules for callers: this is how the kernel powers off; `PCMachine.exit` writes the
// status and halts, in case no such device is present.

public enum DebugExit {
    /// The device's I/O port (`toro run`'s iobase).
    public static let port: UInt16 = 0xF4

    /// Asks QEMU to exit with status `(status << 1) | 1`.
    public static func write<Ports: PortAccess>(_ status: UInt8, ports: Ports) {
        ports.out32(port, UInt32(status))
    }
}
