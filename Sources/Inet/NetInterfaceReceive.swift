// NetInterface's receive path: one Ethernet frame in, at most a reply or a delivery to the
// transport out. Every check comes before the bytes it protects are read, every refusal
// is counted (NetCounters), and nothing here traps on what a peer sends.
//
//   Ethernet  decode (short, 802.3 length and VLAN frames refused); destination this MAC
//             or broadcast; source neither a group address nor this MAC
//   ARP       RFC 826 "Packet Reception": merge the sender into a known entry; if the
//             target is this host, add the sender (on-link senders only) and answer a
//             request; send what waited for the sender
//   IPv4      IPv4Header.decode verifies the checksum and refuses fragments; destination
//             this host (broadcasts counted apart); a source some host can have
//   ICMP      echo request -> echo reply, same identifier, sequence and data
//   TCP       the transport's (`receive(from:to:payload:now:)`)
//
// Rules for callers: see NetInterface.swift.
import Core
import Wire

extension NetInterface {
    /// Takes one received Ethernet frame (without FCS; padding allowed). The bytes are
    /// read during the call only.
    public func receive(frame: UnsafeRawBufferPointer, now: UInt64) {
        counters.framesReceived += 1
        let ethernet: EthernetHeader
        do throws(EthernetError) {
            ethernet = try EthernetHeader.decode(frame)
        } catch {
            if error == .vlanTagged { counters.vlanFrames += 1 } else { counters.malformedFrames += 1 }
            return
        }
        guard ethernet.destination == mac || ethernet.destination == .broadcast else {
            counters.notOurMAC += 1
            return
        }
        guard !ethernet.source.isGroup, ethernet.source != mac else {
            counters.badSourceMAC += 1
            return
        }
        let payload = UnsafeRawBufferPointer(rebasing: frame[EthernetHeader.size...])
        switch ethernet.etherType {
        case .arp: receiveARP(payload, now: now)
        case .ipv4: receiveIPv4(payload, now: now)
        case .ipv6: counters.ipv6Frames += 1
        default: counters.otherEtherTypes += 1
        }
    }

    func receiveARP(_ payload: UnsafeRawBufferPointer, now: UInt64) {
        let packet: ARPPacket
        do throws(ARPError) {
            packet = try ARPPacket.decode(payload)
        } catch {
            counters.arpMalformed += 1
            return
        }
        guard packet.senderMAC != .zero, !packet.senderMAC.isGroup else {
            counters.arpBadSender += 1
            return
        }
        guard packet.senderAddress != localAddress else {
            counters.arpConflicts += 1    // another station claims this host's address
            return
        }
        let forUs = packet.targetAddress == localAddress
        // An ARP probe (sender 0.0.0.0, RFC 5227) teaches nothing; neither does a sender no
        // host here can be, or one off the subnet (never a next hop).
        let sender = packet.senderAddress
        if InetConfiguration.isUnicast(sender), configuration.isOnLink(sender), configuration.isHostAddress(sender) {
            var known = arp.update(sender, mac: packet.senderMAC, now: now, create: false)
            if !known && forUs { known = arp.update(sender, mac: packet.senderMAC, now: now, create: true) }
            if known { releaseFrames(for: sender, to: packet.senderMAC) }
        }
        guard forUs else {
            counters.arpNotForUs += 1
            return
        }
        if packet.operation == .request {
            sendARP(packet.reply(from: mac), to: packet.senderMAC)
            counters.arpRepliesSent += 1
        }
    }

    func receiveIPv4(_ payload: UnsafeRawBufferPointer, now: UInt64) {
        let header: IPv4Header
        do throws(IPv4Error) {
            header = try IPv4Header.decode(payload)
        } catch {
            switch error {
            case .badChecksum: counters.ipBadChecksum += 1
            case .fragment: counters.ipFragments += 1
            default: counters.ipMalformed += 1
            }
            return
        }
        guard header.destination == localAddress else {
            if header.destination == .broadcast || header.destination == configuration.subnetBroadcast {
                counters.ipBroadcast += 1
            } else {
                counters.ipNotForUs += 1
            }
            return
        }
        let source = header.source
        guard InetConfiguration.isUnicast(source), source != localAddress,
              !configuration.isOnLink(source) || configuration.isHostAddress(source) else {
            counters.ipBadSource += 1
            return
        }
        let data = UnsafeRawBufferPointer(rebasing: payload[header.payloadRange])
        switch header.proto {
        case .tcp:
            guard let transport else {
                counters.tcpNoTransport += 1
                return
            }
            counters.tcpDelivered += 1
            transport.receive(from: source, to: header.destination, payload: data, now: now)
        case .icmp:
            receiveICMP(data, from: source, now: now)
        default:
            counters.ipUnknownProtocol += 1
        }
    }

    /// Answers an echo request with a reply carrying the same identifier, sequence and
    /// data (RFC 792; RFC 1122 §3.2.2.6). Nothing else is answered: never an ICMP error.
    func receiveICMP(_ message: UnsafeRawBufferPointer, from source: IPv4Address, now: UInt64) {
        let echo: ICMPEcho
        do throws(ICMPError) {
            echo = try ICMPEcho.decode(message)
        } catch {
            switch error {
            case .badChecksum: counters.icmpBadChecksum += 1
            case .notEcho: counters.icmpIgnored += 1
            default: counters.icmpMalformed += 1
            }
            return
        }
        guard echo.kind == .request else {
            counters.icmpIgnored += 1
            return
        }
        counters.echoRequests += 1
        // The reply is as long as the request: one frame, since fragments never arrive.
        let sent = sendIPv4(to: source, protocol: .icmp, payloadLength: message.count, now: now) { reply in
            reply.copyMemory(from: message)
            echo.reply.encode(into: reply)
        }
        if sent { counters.echoReplies += 1 }
    }
}
