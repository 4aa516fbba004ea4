// NetInterface with a recording NIC on a virtual clock: ARP answered and resolved (retries,
// give-up, the queue flushed on the reply), ICMP echo answered byte for byte, the datagrams
// it builds, the next hop, TCP handed to the transport, and every malformed or foreign frame
// dropped and counted.
import Core
@testable import Inet
import TestSupport
import Wire
import XCTest

final class NetInterfaceTests: XCTestCase {
    let ours = TestNetwork.ours
    let ourMAC = TestNetwork.ourMAC
    let peerMAC = TestNetwork.peerMAC
    let gateway = TestNetwork.gateway
    let neighbour = IPv4Address(10, 0, 2, 3)
    let neighbourMAC = MACAddress(0x02, 0x00, 0x00, 0x00, 0x00, 0x03)

    // MARK: ARP

    func testARPRequestForOurAddressIsAnsweredAndTheSenderLearned() {
        let net = TestNetwork()
        net.receive(ethernet(to: .broadcast, from: peerMAC, type: 0x0806,
                             arp(1, senderMAC: peerMAC, sender: gateway, target: ours)))
        let reply = padded(ethernet(to: peerMAC, from: ourMAC, type: 0x0806,
                                    arp(2, senderMAC: ourMAC, sender: ours, targetMAC: peerMAC, target: gateway)))
        XCTAssertEqual(net.take(), [reply])
        XCTAssertEqual(reply.count, 60)
        XCTAssertEqual(net.interface.arp.lookup(gateway, now: 1)?.mac, peerMAC, "the sender was learned")
        XCTAssertEqual(net.interface.counters.arpRepliesSent, 1)
    }

    func testARPForAnotherAddressIsNotAnsweredAndOnlyMergesKnownEntries() {
        let net = TestNetwork()
        net.receive(ethernet(to: .broadcast, from: peerMAC, type: 0x0806,
                             arp(1, senderMAC: peerMAC, sender: gateway, target: neighbour)))
        XCTAssertEqual(net.take(), [])
        XCTAssertNil(net.interface.arp.lookup(gateway, now: 1), "nothing learned from a request for another host")
        net.learn(gateway, peerMAC)
        let moved = MACAddress(0x02, 0, 0, 0, 0, 0x22)
        net.receive(ethernet(to: .broadcast, from: moved, type: 0x0806,
                             arp(1, senderMAC: moved, sender: gateway, target: neighbour)), now: 5)
        XCTAssertEqual(net.interface.arp.lookup(gateway, now: 6)?.mac, moved, "RFC 826 merge: a known sender is updated")
        XCTAssertEqual(net.interface.counters.arpNotForUs, 2)
    }

    func testARPFromBadSendersIsDropped() {
        let net = TestNetwork()
        // A conflict: another station claims our address.
        net.receive(ethernet(to: .broadcast, from: peerMAC, type: 0x0806, arp(1, senderMAC: peerMAC, sender: ours, target: ours)))
        // A group sender MAC inside the packet.
        net.receive(ethernet(to: .broadcast, from: peerMAC, type: 0x0806,
                             arp(1, senderMAC: .broadcast, sender: gateway, target: ours)))
        // A probe (sender 0.0.0.0, RFC 5227): answered, nothing learned.
        net.receive(ethernet(to: .broadcast, from: peerMAC, type: 0x0806, arp(1, senderMAC: peerMAC, sender: .any, target: ours)))
        // A sender off the subnet: answered, not learned.
        net.receive(ethernet(to: .broadcast, from: peerMAC, type: 0x0806,
                             arp(1, senderMAC: peerMAC, sender: IPv4Address(10, 0, 9, 9), target: ours)))
        // Not Ethernet/IPv4, and truncated.
        var other = arp(1, senderMAC: peerMAC, sender: gateway, target: ours)
        other[1] = 6
        net.receive(ethernet(to: .broadcast, from: peerMAC, type: 0x0806, other))
        net.receive(ethernet(to: .broadcast, from: peerMAC, type: 0x0806, Array(arp(1, senderMAC: peerMAC, sender: gateway, target: ours)[0 ..< 27])))
        let counters = net.interface.counters
        XCTAssertEqual(counters.arpConflicts, 1)
        XCTAssertEqual(counters.arpBadSender, 1)
        XCTAssertEqual(counters.arpMalformed, 2)
        XCTAssertEqual(counters.arpRepliesSent, 2)
        XCTAssertEqual(net.take().count, 2)
        XCTAssertEqual(net.interface.arp.count, 0)
    }

    func testResolutionRetriesGivesUpAndStartsAgain() {
        let net = TestNetwork()
        XCTAssertTrue(net.send([1, 2, 3, 4], to: neighbour, now: 0), "queued while ARP resolves")
        let request = padded(ethernet(to: .broadcast, from: ourMAC, type: 0x0806,
                                      arp(1, senderMAC: ourMAC, sender: ours, target: neighbour)))
        XCTAssertEqual(net.take(), [request])
        XCTAssertEqual(net.interface.nextDeadline, second)
        var requests: [UInt64] = []
        for now in stride(from: second / 2, through: 5 * second, by: Int(second / 2)) {
            net.interface.tick(now: now)
            for frame in net.take() {
                XCTAssertEqual(frame, request)
                requests.append(now)
            }
        }
        XCTAssertEqual(requests, [second, 2 * second], "three requests in all, a second apart")
        XCTAssertEqual(net.interface.arp.counters.resolutionsFailed, 1)
        XCTAssertEqual(net.interface.arp.counters.framesDroppedUnresolved, 1)
        XCTAssertNil(net.interface.nextDeadline)
        XCTAssertTrue(net.send([5], to: neighbour, now: 6 * second))
        XCTAssertEqual(net.take(), [request], "a later datagram asks again")
    }

    func testReplyFlushesTheQueuedFramesInOrder() throws {
        let net = TestNetwork()
        net.send([1, 1], to: neighbour, now: 0)
        net.send([2, 2, 2], to: neighbour, now: 1)
        XCTAssertEqual(net.take().count, 1, "one request for both")
        net.receive(ethernet(to: ourMAC, from: neighbourMAC, type: 0x0806,
                             arp(2, senderMAC: neighbourMAC, sender: neighbour, targetMAC: ourMAC, target: ours)), now: 2)
        let flushed = net.take()
        XCTAssertEqual(flushed.count, 2)
        XCTAssertEqual(flushed[0], padded(ethernet(to: neighbourMAC, from: ourMAC, type: 0x0800,
                                                   ipv4(from: ours, to: neighbour, protocol: 6, [1, 1], identification: 0))))
        XCTAssertEqual(flushed[1], padded(ethernet(to: neighbourMAC, from: ourMAC, type: 0x0800,
                                                   ipv4(from: ours, to: neighbour, protocol: 6, [2, 2, 2], identification: 1))))
        XCTAssertTrue(net.interface.arp.resolving.isEmpty)
        XCTAssertNil(net.interface.nextDeadline)
        XCTAssertTrue(net.send([3], to: neighbour, now: 3))
        XCTAssertEqual(net.take().map { Array($0[0 ..< 6]) }, [neighbourMAC.bytes], "resolved: straight out")
    }

    func testEntryNearExpiryIsRenewedWithAUnicastRequest() {
        let net = TestNetwork()
        net.learn(neighbour, neighbourMAC, now: 0)
        net.send([1], to: neighbour, now: 56 * second)
        let frames = net.take()
        XCTAssertEqual(frames.count, 2)
        XCTAssertEqual(frames[0], padded(ethernet(to: neighbourMAC, from: ourMAC, type: 0x0806,
                                                  arp(1, senderMAC: ourMAC, sender: ours, target: neighbour))))
        XCTAssertEqual(Array(frames[1][0 ..< 6]), neighbourMAC.bytes)
    }

    func testAnnouncementIsAGratuitousRequest() {
        let net = TestNetwork()
        net.interface.announce()
        XCTAssertEqual(net.take(), [padded(ethernet(to: .broadcast, from: ourMAC, type: 0x0806,
                                                    arp(1, senderMAC: ourMAC, sender: ours, target: ours)))])
    }

    // MARK: sending

    func testDatagramsCarryDFTTL64AndACountingIdentification() throws {
        let net = TestNetwork()
        net.learn(neighbour, neighbourMAC)
        let payload = (0 ..< 100).map { UInt8($0) }
        XCTAssertTrue(net.send(payload, to: neighbour))
        XCTAssertTrue(net.send(payload, to: neighbour))
        let frames = net.take()
        XCTAssertEqual(frames.count, 2)
        XCTAssertEqual(frames[0], ethernet(to: neighbourMAC, from: ourMAC, type: 0x0800,
                                           ipv4(from: ours, to: neighbour, protocol: 6, payload, identification: 0)))
        XCTAssertEqual(frames[1], ethernet(to: neighbourMAC, from: ourMAC, type: 0x0800,
                                           ipv4(from: ours, to: neighbour, protocol: 6, payload, identification: 1)))
        XCTAssertEqual(checksum(Array(frames[0][14 ..< 34])), 0)
        XCTAssertEqual(net.interface.maximumPayload, 1480)
        XCTAssertEqual(net.interface.localAddress, ours)
    }

    func testNextHopIsTheDestinationOnTheSubnetAndTheGatewayOtherwise() {
        let net = TestNetwork()
        net.learn(gateway, peerMAC)
        XCTAssertTrue(net.send([9], to: IPv4Address(93, 184, 216, 34)))
        let frames = net.take()
        XCTAssertEqual(frames.count, 1)
        XCTAssertEqual(Array(frames[0][0 ..< 6]), peerMAC.bytes, "off the subnet: the gateway's MAC")
        XCTAssertEqual(Array(frames[0][30 ..< 34]), [93, 184, 216, 34], "the destination stays the far host")

        net.send([9], to: neighbour)
        XCTAssertEqual(net.take(), [padded(ethernet(to: .broadcast, from: ourMAC, type: 0x0806,
                                                    arp(1, senderMAC: ourMAC, sender: ours, target: neighbour)))],
                       "on the subnet: the neighbour itself is resolved")

        let isolated = TestNetwork(configuration: InetConfiguration(address: ours, prefixLength: 24, gateway: nil))
        XCTAssertFalse(isolated.send([9], to: IPv4Address(10, 0, 3, 1)))
        XCTAssertEqual(isolated.interface.counters.sendNoRoute, 1)
        XCTAssertEqual(isolated.take(), [])
    }

    func testSendRefusals() {
        let net = TestNetwork()
        net.learn(neighbour, neighbourMAC)
        XCTAssertFalse(net.send([UInt8](repeating: 0, count: 1481), to: neighbour))
        XCTAssertTrue(net.send([UInt8](repeating: 0, count: 1480), to: neighbour))
        XCTAssertEqual(net.take().map(\.count), [1514])
        for destination in [IPv4Address.broadcast, IPv4Address(10, 0, 2, 255), ours, IPv4Address(127, 0, 0, 1),
                            IPv4Address(224, 0, 0, 1), IPv4Address.any] {
            XCTAssertFalse(net.send([1], to: destination))
        }
        var inner: Bool? = nil
        let outer = net.interface.sendIPv4(to: neighbour, protocol: .tcp, payloadLength: 1, now: 0) { buffer in
            buffer[0] = 1
            inner = net.interface.sendIPv4(to: neighbour, protocol: .tcp, payloadLength: 1, now: 0) { $0[0] = 2 }
        }
        XCTAssertTrue(outer)
        XCTAssertEqual(inner, false, "one scratch frame: a nested send is refused")
        net.refuse = true
        XCTAssertFalse(net.send([1], to: neighbour), "the NIC refused it")
        let counters = net.interface.counters
        XCTAssertEqual(counters.sendTooLong, 1)
        XCTAssertEqual(counters.sendBadDestination, 6)
        XCTAssertEqual(counters.sendReentered, 1)
        XCTAssertEqual(counters.transmitFailed, 1)
        XCTAssertEqual(counters.sendRefusals, 8)
    }

    // MARK: ICMP

    func testEchoRequestIsAnsweredByteForByte() {
        let net = TestNetwork()
        net.learn(gateway, peerMAC)
        let data = (0 ..< 56).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        net.receive(ethernet(to: ourMAC, from: peerMAC, type: 0x0800,
                             ipv4(from: gateway, to: ours, protocol: 1, icmpEcho(type: 8, identifier: 0x4242, sequence: 3, data),
                                  identification: 0x7777, ttl: 3)))
        let reply = net.take()
        let expected = ethernet(to: peerMAC, from: ourMAC, type: 0x0800,
                                ipv4(from: ours, to: gateway, protocol: 1, icmpEcho(type: 0, identifier: 0x4242, sequence: 3, data),
                                     identification: 0))
        XCTAssertEqual(reply, [expected])
        XCTAssertEqual(checksum(Array(expected[34...])), 0, "the ICMP checksum verifies")
        XCTAssertEqual(net.interface.counters.echoRequests, 1)
        XCTAssertEqual(net.interface.counters.echoReplies, 1)

        // An odd-length request, padded on the wire to a minimum frame.
        net.receive(padded(ethernet(to: ourMAC, from: peerMAC, type: 0x0800,
                                    ipv4(from: gateway, to: ours, protocol: 1, icmpEcho(type: 8, identifier: 1, sequence: 4, [0xAB])))))
        XCTAssertEqual(net.take(), [padded(ethernet(to: peerMAC, from: ourMAC, type: 0x0800,
                                                    ipv4(from: ours, to: gateway, protocol: 1,
                                                         icmpEcho(type: 0, identifier: 1, sequence: 4, [0xAB]), identification: 1)))])
    }

    func testOnlyEchoRequestsToUsAreAnswered() {
        let net = TestNetwork()
        net.learn(gateway, peerMAC)
        let request = icmpEcho(type: 8, identifier: 1, sequence: 1, [1, 2, 3])
        var corrupt = request
        corrupt[9] ^= 0xFF
        var badCode: [UInt8] = [8, 1, 0, 0, 0, 1, 0, 1]                  // code 1, checksum right
        let sum = checksum(badCode)
        badCode[2] = UInt8(sum >> 8)
        badCode[3] = UInt8(sum & 0xFF)
        let messages: [[UInt8]] = [
            icmpEcho(type: 0, identifier: 1, sequence: 1, [1]),           // a reply: ignored
            [3, 3, 0xFC, 0xFC, 0, 0, 0, 0],                                // destination unreachable: ignored
            corrupt,                                                       // bad checksum
            [8, 0, 0xF7],                                                  // truncated
        ]
        for message in messages {
            net.receive(ethernet(to: ourMAC, from: peerMAC, type: 0x0800, ipv4(from: gateway, to: ours, protocol: 1, message)))
        }
        net.receive(ethernet(to: ourMAC, from: peerMAC, type: 0x0800, ipv4(from: gateway, to: ours, protocol: 1, badCode)))
        net.receive(ethernet(to: .broadcast, from: peerMAC, type: 0x0800,
                             ipv4(from: gateway, to: IPv4Address(10, 0, 2, 255), protocol: 1, request)))
        net.receive(ethernet(to: .broadcast, from: peerMAC, type: 0x0800, ipv4(from: gateway, to: .broadcast, protocol: 1, request)))
        net.receive(ethernet(to: ourMAC, from: peerMAC, type: 0x0800,
                             ipv4(from: IPv4Address(10, 0, 2, 255), to: ours, protocol: 1, request)))
        XCTAssertEqual(net.take(), [], "no reply to any of them")
        let counters = net.interface.counters
        XCTAssertEqual(counters.icmpIgnored, 2)
        XCTAssertEqual(counters.icmpBadChecksum, 1)
        XCTAssertEqual(counters.icmpMalformed, 2)
        XCTAssertEqual(counters.ipBroadcast, 2)
        XCTAssertEqual(counters.ipBadSource, 1)
        XCTAssertEqual(counters.echoRequests, 0)
    }

    // MARK: TCP

    func testTCPGoesToTheTransport() {
        let net = TestNetwork()
        net.receive(ethernet(to: ourMAC, from: peerMAC, type: 0x0800, ipv4(from: gateway, to: ours, protocol: 6, [9, 9, 9])))
        XCTAssertEqual(net.interface.counters.tcpNoTransport, 1, "no transport yet: counted")
        let transport = RecordingTransport()
        net.interface.transport = transport
        let segment = (0 ..< 40).map { UInt8($0) }
        // With options in the IPv4 header (skipped) and Ethernet padding after the datagram.
        var datagram = ipv4(from: gateway, to: ours, protocol: 6, segment)
        datagram.insert(contentsOf: [1, 1, 1, 0], at: 20)     // NOP NOP NOP EOL
        datagram[0] = 0x46
        datagram[2 ... 3] = be16(24 + segment.count)[...]
        datagram[10] = 0
        datagram[11] = 0
        let sum = checksum(Array(datagram[0 ..< 24]))
        datagram[10] = UInt8(sum >> 8)
        datagram[11] = UInt8(sum & 0xFF)
        net.receive(ethernet(to: ourMAC, from: peerMAC, type: 0x0800, datagram + [0, 0, 0, 0]), now: 77)
        XCTAssertEqual(transport.received.count, 1)
        XCTAssertEqual(transport.received.first?.source, gateway)
        XCTAssertEqual(transport.received.first?.destination, ours)
        XCTAssertEqual(transport.received.first?.payload, segment)
        XCTAssertEqual(transport.received.first?.now, 77)
        XCTAssertEqual(net.interface.counters.tcpDelivered, 1)
        net.receive(ethernet(to: ourMAC, from: peerMAC, type: 0x0800, ipv4(from: gateway, to: ours, protocol: 17, [1])))
        XCTAssertEqual(net.interface.counters.ipUnknownProtocol, 1)
        XCTAssertEqual(transport.received.count, 1)
    }

    func testTimersRunARPThenTheTransport() {
        let net = TestNetwork()
        let transport = RecordingTransport()
        net.interface.transport = transport
        XCTAssertNil(net.interface.nextDeadline)
        transport.nextDeadline = 5 * second
        XCTAssertEqual(net.interface.nextDeadline, 5 * second)
        net.send([1], to: neighbour, now: 0)
        XCTAssertEqual(net.interface.nextDeadline, second, "ARP's retry comes first")
        transport.nextDeadline = 100
        XCTAssertEqual(net.interface.nextDeadline, 100)
        net.interface.tick(now: 123)
        XCTAssertEqual(transport.ticks, [123])
    }

    // MARK: malformed and foreign frames

    func testMalformedAndForeignFramesAreDroppedAndCounted() {
        let net = TestNetwork()
        let transport = RecordingTransport()
        net.interface.transport = transport
        let good = ipv4(from: gateway, to: ours, protocol: 6, [1, 2, 3, 4])
        let fragment = ipv4(from: gateway, to: ours, protocol: 6, [1, 2, 3, 4], flags: 0x2000)   // MF
        let offset = ipv4(from: gateway, to: ours, protocol: 6, [1, 2, 3, 4], flags: 0x0010)
        var shortTotal = good
        shortTotal[3] = 19
        var version6 = good
        version6[0] = 0x65
        let frames: [[UInt8]] = [
            [],
            [1, 2, 3],
            Array(ethernet(to: ourMAC, from: peerMAC, type: 0x0800, [])[0 ..< 13]),
            ethernet(to: ourMAC, from: peerMAC, type: 0x0040, good),                       // an 802.3 length
            ethernet(to: ourMAC, from: peerMAC, type: 0x8100, [0, 1, 8, 0] + good),        // VLAN
            ethernet(to: ourMAC, from: peerMAC, type: 0x86DD, [UInt8](repeating: 0, count: 40)),
            ethernet(to: ourMAC, from: peerMAC, type: 0x88CC, [0]),                        // LLDP
            ethernet(to: neighbourMAC, from: peerMAC, type: 0x0800, good),                 // another MAC
            ethernet(to: MACAddress(0x01, 0, 0x5E, 0, 0, 1), from: peerMAC, type: 0x0800, good),   // multicast
            ethernet(to: ourMAC, from: MACAddress(0x01, 0, 0x5E, 0, 0, 1), type: 0x0800, good),    // group source
            ethernet(to: ourMAC, from: ourMAC, type: 0x0800, good),                        // our own
            ethernet(to: ourMAC, from: peerMAC, type: 0x0800, ipv4(from: gateway, to: ours, protocol: 6, [1], badChecksum: true)),
            ethernet(to: ourMAC, from: peerMAC, type: 0x0800, fragment),
            ethernet(to: ourMAC, from: peerMAC, type: 0x0800, offset),
            ethernet(to: ourMAC, from: peerMAC, type: 0x0800, Array(good[0 ..< 19])),
            ethernet(to: ourMAC, from: peerMAC, type: 0x0800, Array(good[0 ..< 22])),       // total length past the frame
            ethernet(to: ourMAC, from: peerMAC, type: 0x0800, shortTotal),
            ethernet(to: ourMAC, from: peerMAC, type: 0x0800, version6),
            ethernet(to: ourMAC, from: peerMAC, type: 0x0800, ipv4(from: gateway, to: neighbour, protocol: 6, [1])),
            ethernet(to: ourMAC, from: peerMAC, type: 0x0800, ipv4(from: IPv4Address(127, 0, 0, 1), to: ours, protocol: 6, [1])),
            ethernet(to: ourMAC, from: peerMAC, type: 0x0800, ipv4(from: ours, to: ours, protocol: 6, [1])),
            ethernet(to: ourMAC, from: peerMAC, type: 0x0800, ipv4(from: IPv4Address(224, 0, 0, 9), to: ours, protocol: 6, [1])),
        ]
        for frame in frames { net.receive(frame) }
        let counters = net.interface.counters
        XCTAssertEqual(counters.framesReceived, UInt64(frames.count))
        XCTAssertEqual(counters.malformedFrames, 4)
        XCTAssertEqual(counters.vlanFrames, 1)
        XCTAssertEqual(counters.ipv6Frames, 1)
        XCTAssertEqual(counters.otherEtherTypes, 1)
        XCTAssertEqual(counters.notOurMAC, 2)
        XCTAssertEqual(counters.badSourceMAC, 2)
        XCTAssertEqual(counters.ipBadChecksum, 1)
        XCTAssertEqual(counters.ipFragments, 2)
        XCTAssertEqual(counters.ipMalformed, 4)
        XCTAssertEqual(counters.ipNotForUs, 1)
        XCTAssertEqual(counters.ipBadSource, 3)
        XCTAssertEqual(counters.receiveDrops, UInt64(frames.count), "every frame dropped, each for one reason")
        XCTAssertEqual(transport.received.count, 0)
        XCTAssertEqual(net.take(), [])
    }

    func testGarbageNeverTrapsAndCostsBoundedMemory() {
        let net = TestNetwork(arpLimits: ARPLimits(entries: 8, resolutions: 4, framesPerDestination: 2, framesTotal: 4))
        net.interface.transport = RecordingTransport()
        var rng = RNG(seed: 12)
        let templates: [[UInt8]] = [
            ethernet(to: .broadcast, from: peerMAC, type: 0x0806, arp(1, senderMAC: peerMAC, sender: gateway, target: ours)),
            ethernet(to: ourMAC, from: peerMAC, type: 0x0800, ipv4(from: gateway, to: ours, protocol: 1,
                                                                   icmpEcho(type: 8, identifier: 1, sequence: 1, [1, 2, 3]))),
            ethernet(to: ourMAC, from: peerMAC, type: 0x0800, ipv4(from: gateway, to: ours, protocol: 6, [1, 2, 3, 4])),
        ]
        for round in 0 ..< 6_000 {
            var frame: [UInt8]
            if round % 2 == 0 {
                frame = templates[rng.below(templates.count)]
                for _ in 0 ... rng.below(4) where !frame.isEmpty { frame[rng.below(frame.count)] = UInt8(truncatingIfNeeded: rng.next()) }
                if rng.below(4) == 0 { frame = Array(frame[0 ..< rng.below(frame.count + 1)]) }
                // A flood of senders on the subnet asking for us.
                if round % 10 == 0 {
                    frame = ethernet(to: .broadcast, from: MACAddress(rawValue: rng.next() & ~(1 << 40)), type: 0x0806,
                                     arp(1, senderMAC: MACAddress(rawValue: rng.next() & ~(1 << 40)),
                                         sender: IPv4Address(10, 0, 2, UInt8(1 + rng.below(254))), target: ours))
                }
            } else {
                frame = (0 ..< rng.below(1600)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            }
            net.receive(frame, now: UInt64(round) * 1_000_000)
            if round % 7 == 0 { net.send([1, 2], to: IPv4Address(10, 0, 2, UInt8(1 + rng.below(254))), now: UInt64(round) * 1_000_000) }
            if round % 100 == 0 { net.interface.tick(now: UInt64(round) * 1_000_000) }
            _ = net.take()
        }
        XCTAssertLessThanOrEqual(net.interface.arp.count, 8)
        XCTAssertLessThanOrEqual(net.interface.arp.resolving.count, 4)
        XCTAssertLessThanOrEqual(net.interface.arp.waitingFrames, 4)
        XCTAssertEqual(net.interface.counters.framesReceived, 6_000)
    }
}
