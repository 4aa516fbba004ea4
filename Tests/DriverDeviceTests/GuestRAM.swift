// The guest's RAM for a driver-against-device test: page-aligned host memory handed to the
// kernel's page allocator (Core's KernelMemory), so the drivers' rings and buffers come
// from it exactly as in the kernel, and are addressed the kernel's way: a guest-physical
// address is the pointer (the kernel runs identity-mapped, VirtIO's IdentityMemory).
//
// Rules for callers: `install` in setUp and `GuestRAM.uninstall()` in tearDown (KernelMemory
// is process-wide and other test targets use it too); keep the GuestRAM alive while a
// driver that took pages from it runs.
import Core
import VirtIO

final class GuestRAM {
    let base: UnsafeMutableRawPointer
    let pages: Int

    init(pages: Int) {
        self.pages = pages
        base = UnsafeMutableRawPointer.allocate(byteCount: pages * 4096, alignment: 4096)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: pages * 4096)
    }

    deinit { base.deallocate() }

    var start: UInt64 { UInt64(UInt(bitPattern: base)) }
    var end: UInt64 { start + UInt64(pages) * 4096 }

    /// Only this RAM: what a device may touch when every buffer the driver names is a
    /// kernel page (vsock).
    var memory: IdentityMemory { IdentityMemory(ranges: [GuestRange(start: start, end: end)]) }

    /// This RAM and the rest of the process: the kernel passes IdentityMemory over all of
    /// RAM, and a driver whose buffers come from the heap (virtio-fs: FUSEFileSystem's
    /// request and reply buffers) names addresses the host's malloc chose.
    var processMemory: IdentityMemory {
        IdentityMemory(ranges: [GuestRange(start: 0x1000, end: 0x8000_0000_0000)])
    }

    /// Makes this RAM the kernel's page allocator (and heap).
    func install() -> Bool {
        var allocator = PageFrameAllocator()
        allocator.addFree(PhysicalRange(start: start, end: end))
        return KernelMemory.install(pageAllocator: allocator)
    }

    /// Leaves KernelMemory empty again.
    static func uninstall() {
        KernelMemory.install(pageAllocator: PageFrameAllocator())
    }
}
