// A driver-side and a device-side queue over one fake guest, wired together: the
// fixture for testing either side against the real other side in one process.
//
// Layout of the fake guest: the rings at `memory.base` (page-aligned), then
// `bufferArea ..< memory.base + memory.size` free for the test's buffers.
//
// Rules for callers: `driver` and `device` are values; mutate them through the fixture
// (`loop.driver.addBuffer(loop.memory, ...)`). Memory is shared (a class).
import VirtIO

/// A virtqueue with both ends, over a `FakeGuestMemory`.
public struct LoopbackQueue {
    /// The shared guest memory.
    public let memory: FakeGuestMemory
    /// Where the rings lie.
    public let layout: VirtqueueLayout
    /// The driver side (set up: rings zeroed).
    public var driver: SplitVirtqueue
    /// The device side, over the same rings.
    public var device: DeviceQueue
    /// The first address after the rings, 4 KiB-aligned, free for buffers.
    public let bufferArea: UInt64

    /// A queue of `size` entries in a fresh fake guest of `memorySize` bytes at `base`.
    public init(size: UInt16, memorySize: Int = 1 << 20, base: UInt64 = 0x10_0000) throws(VirtqueueError) {
        memory = FakeGuestMemory(size: memorySize, base: base)
        guard let layout = VirtqueueLayout(size: size, base: base) else { throw .invalidSize }
        self.layout = layout
        driver = try SplitVirtqueue(layout: layout)
        try driver.setUp(memory)
        device = try DeviceQueue(layout: layout)
        bufferArea = (base + layout.totalBytes + 0xFFF) & ~0xFFF
    }

    /// The address of the `index`-th buffer of `stride` bytes in the buffer area.
    public func buffer(_ index: Int, stride: UInt64 = 256) -> UInt64 {
        bufferArea + UInt64(index) * stride
    }
}
