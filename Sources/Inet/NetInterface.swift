// One Ethernet interface running IPv4: the layer between a NIC (frames in through
// `receive(frame:now:)`, frames out through the `transmit` closure) and the transport
// (TCP, through `IPv4Output` and `IPv4Transport`, IPv4Layer.swift). Pure: no clock, no
// device; the kernel's network thread (LegacyNet) feeds it, host tests feed it bytes.
//
// Receive (NetInterfaceReceive.swift): Ethernet II for this MAC or broadcast; ARP (answer
// requests for this address, learn by RFC 826's merge rule); IPv4 for this address
// (checksum verified, options skipped, fragments dropped); ICMP echo requests answered;
// TCP handed to the transport. Everything else is dropped and counted (`counters`).
//
// Send (`sendIPv4`): Ethernet and a 20-byte IPv4 header (DF set, TTL 64, identification
// counting up) are written into one scratch frame, the transport's `fill` writes the
// payload behind them, and the frame goes to the next hop: the destination on the subnet,
// the gateway otherwise. Its MAC comes from the ARP cache; on a miss the frame waits in
// the cache's bounded queue while a request goes out, and leaves when the reply comes.
// Frames are padded to Ethernet's 60-byte minimum.
//
// Timers (`tick`, `nextDeadline`): ARP's retries and expiry, then the transport's.
//
// Rules for callers: one thread at a time (the network thread, and the service threads
// that send, on one CPU, cooperatively); nothing here blocks or locks, and nothing a peer
// sends can trap: every length is checked before a byte is read. `fill` must not call
// `sendIPv4` (refused and counted: there is one scratch frame).
import Core
import Wire

public final class NetInterface: IPv4Output {
    /// This interface's station address.
    public let mac: MACAddress
    public let configuration: InetConfiguration
    /// The IPv4 layer's ARP cache.
    public let arp: ARPCache
    /// Where TCP segments go (nil: counted as `tcpNoTransport` and dropped).
    public var transport: (any IPv4Transport)?
    /// Why frames went where they went (see NetCounters.swift).
    public internal(set) var counters = NetCounters()

    /// Hands one frame to the NIC; false when it was not taken.
    let transmit: (UnsafeRawBufferPointer) -> Bool
    /// Where `sendIPv4` builds its frame (`VirtIONet.maximumFrame` bytes).
    let scratch: UnsafeMutableRawBufferPointer
    /// Where ARP packets are built (a minimum-size frame).
    let control: UnsafeMutableRawBufferPointer
    /// The next datagram's identification (RFC 791; RFC 6864 lets DF datagrams use any).
    var identification: UInt16 = 0
    /// True while a `fill` runs (the scratch frame is in use).
    var building = false

    /// The largest frame without FCS and VLAN tag: 14 + 1500.
    public static let maximumFrame = EthernetHeader.size + 1500
    /// Headers before the payload: Ethernet and IPv4 without options.
    static let headersSize = EthernetHeader.size + IPv4Header.size

    public init(mac: MACAddress, configuration: InetConfiguration, arpLimits: ARPLimits = ARPLimits(),
                transmit: @escaping (UnsafeRawBufferPointer) -> Bool) {
        self.mac = mac
        self.configuration = configuration
        self.transmit = transmit
        arp = ARPCache(limits: arpLimits)
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: NetInterface.maximumFrame, alignment: 16)
        control = UnsafeMutableRawBufferPointer.allocate(byteCount: EthernetHeader.minimumFrameSize, alignment: 16)
    }

    deinit {
        scratch.deallocate()
        control.deallocate()
    }

    // MARK: IPv4Output

    public var localAddress: IPv4Address { configuration.address }

    /// 1500 - 20: one Ethernet frame, no IPv4 options.
    public var maximumPayload: Int { NetInterface.maximumFrame - NetInterface.headersSize }

    public func sendIPv4(to destination: IPv4Address, protocol proto: IPProtocol, payloadLength: Int, now: UInt64,
                         fill: (UnsafeMutableRawBufferPointer) -> Void) -> Bool {
        guard !building else {
            counters.sendReentered += 1
            return false
        }
        guard payloadLength >= 0 && payloadLength <= maximumPayload else {
            counters.sendTooLong += 1
            return false
        }
        guard InetConfiguration.isUnicast(destination), destination != localAddress,
              destination != configuration.subnetBroadcast else {
            counters.sendBadDestination += 1
            return false
        }
        guard let hop = configuration.nextHop(for: destination) else {
            counters.sendNoRoute += 1
            return false
        }
        building = true
        defer { building = false }
        let end = NetInterface.headersSize + payloadLength
        let frame = UnsafeMutableRawBufferPointer(rebasing: scratch[0 ..< max(end, EthernetHeader.minimumFrameSize)])
        EthernetHeader(destination: .zero, source: mac, etherType: .ipv4).encode(into: frame)
        IPv4Header(source: localAddress, destination: destination, protocol: proto, payloadLength: payloadLength,
                   identification: identification)
            .encode(into: UnsafeMutableRawBufferPointer(rebasing: frame[EthernetHeader.size ..< NetInterface.headersSize]))
        identification &+= 1
        fill(UnsafeMutableRawBufferPointer(rebasing: frame[NetInterface.headersSize ..< end]))
        if end < frame.count {
            UnsafeMutableRawBufferPointer(rebasing: frame[end...]).initializeMemory(as: UInt8.self, repeating: 0)
        }
        counters.datagramsSent += 1
        return deliver(frame, to: hop, now: now)
    }

    /// Sends `frame` (its destination MAC still to fill in) to `hop`'s MAC, or queues it
    /// while ARP resolves `hop`. False only when the NIC refused it.
    func deliver(_ frame: UnsafeMutableRawBufferPointer, to hop: IPv4Address, now: UInt64) -> Bool {
        if let (hopMAC, refresh) = arp.lookup(hop, now: now) {
            if refresh { sendARPRequest(asking: hop, to: hopMAC) }
            hopMAC.store(into: frame, at: 0)
            return transmitFrame(UnsafeRawBufferPointer(frame))
        }
        if arp.enqueue(UnsafeRawBufferPointer(frame), for: hop, now: now) {
            sendARPRequest(asking: hop, to: .broadcast)
        }
        return true
    }

    /// Hands `frame` to the NIC, counting the outcome.
    @discardableResult
    func transmitFrame(_ frame: UnsafeRawBufferPointer) -> Bool {
        if transmit(frame) {
            counters.framesSent += 1
            return true
        }
        counters.transmitFailed += 1
        return false
    }

    // MARK: ARP output

    /// Broadcasts a gratuitous ARP request for this host's address (RFC 5227 §3), so that
    /// neighbours that know an older MAC for it update their caches. Once, at start.
    public func announce() {
        sendARP(ARPPacket.request(from: mac, address: localAddress, asking: localAddress), to: .broadcast)
        counters.arpRequestsSent += 1
    }

    /// Asks who has `address`: broadcast for a resolution, unicast to the known MAC to
    /// renew an entry (RFC 1122 §2.3.2.1).
    func sendARPRequest(asking address: IPv4Address, to destination: MACAddress) {
        sendARP(ARPPacket.request(from: mac, address: localAddress, asking: address), to: destination)
        counters.arpRequestsSent += 1
    }

    /// Builds `packet` in a minimum-size frame to `destination` and transmits it.
    func sendARP(_ packet: ARPPacket, to destination: MACAddress) {
        EthernetHeader(destination: destination, source: mac, etherType: .arp).encode(into: control)
        packet.encode(into: UnsafeMutableRawBufferPointer(rebasing: control[EthernetHeader.size...]))
        let end = EthernetHeader.size + ARPPacket.size
        UnsafeMutableRawBufferPointer(rebasing: control[end...]).initializeMemory(as: UInt8.self, repeating: 0)
        transmitFrame(UnsafeRawBufferPointer(control))
    }

    /// Sends every frame that waited for `address`, now that its MAC is `hopMAC`.
    func releaseFrames(for address: IPv4Address, to hopMAC: MACAddress) {
        arp.releaseFrames(for: address) { frame in
            hopMAC.store(into: frame, at: 0)
            transmitFrame(UnsafeRawBufferPointer(frame))
        }
    }

    // MARK: timers

    /// Runs ARP's retries and expiry, then the transport's timers, due at `now`.
    public func tick(now: UInt64) {
        arp.tick(now: now) { address in sendARPRequest(asking: address, to: .broadcast) }
        transport?.tick(now: now)
    }

    /// The earliest time `tick` has work: ARP's next retry or the transport's next timer.
    public var nextDeadline: UInt64? {
        let own = arp.nextDeadline
        guard let theirs = transport?.nextDeadline else { return own }
        guard let own else { return theirs }
        return min(own, theirs)
    }

    // MARK: log lines

    /// `A.B.C.D/N via G` (or `, no gateway`), no newline.
    public func describeAddress() {
        Log.address(localAddress)
        Log.put(47)
        Log.decimal(configuration.prefixLength)
        if let gateway = configuration.gateway {
            Log.write(" via ")
            Log.address(gateway)
        } else {
            Log.write(", no gateway")
        }
    }

    /// One line of what came in, went out and was dropped.
    public func logStatistics() {
        Log.timestamp()
        Log.write("inet: frames in ")
        Log.decimal(counters.framesReceived)
        Log.write(" (dropped ")
        Log.decimal(counters.receiveDrops)
        Log.write("), out ")
        Log.decimal(counters.framesSent)
        Log.write(" (NIC refused ")
        Log.decimal(counters.transmitFailed)
        Log.write("); ARP entries ")
        Log.decimal(arp.count)
        Log.write(", failed resolutions ")
        Log.decimal(arp.counters.resolutionsFailed)
        Log.write(", frames dropped waiting ")
        Log.decimal(arp.counters.framesDroppedFull + arp.counters.framesDroppedUnresolved)
        Log.put(10)
    }
}
