// What NetInterface has received, sent and dropped: one counter per reason, so a log line
// or a test can say exactly why a frame went nowhere (DESIGN.md "Robustness rules": every
// drop is counted). Written by NetInterface only.
import Core

public struct NetCounters: Equatable, Sendable {
    // MARK: received frames

    /// Frames handed to `receive`.
    public var framesReceived: UInt64 = 0
    /// Shorter than an Ethernet header, or an 802.3 length frame (not Ethernet II).
    public var malformedFrames: UInt64 = 0
    /// 802.1Q or 802.1ad tagged (Toro's NIC is untagged).
    public var vlanFrames: UInt64 = 0
    /// IPv6 (Toro speaks IPv4 only).
    public var ipv6Frames: UInt64 = 0
    /// Another EtherType.
    public var otherEtherTypes: UInt64 = 0
    /// Sent to another unicast MAC, or to a multicast group.
    public var notOurMAC: UInt64 = 0
    /// From a group (multicast or broadcast) source MAC, or from this interface's own MAC.
    public var badSourceMAC: UInt64 = 0

    // MARK: ARP

    /// ARP packets that did not decode (truncated, other hardware or protocol, bad opcode).
    public var arpMalformed: UInt64 = 0
    /// ARP packets whose sender MAC is zero or a group address.
    public var arpBadSender: UInt64 = 0
    /// ARP packets from another station claiming this host's address.
    public var arpConflicts: UInt64 = 0
    /// ARP packets about other hosts (used only to refresh known entries).
    public var arpNotForUs: UInt64 = 0
    /// Requests for this host's address answered.
    public var arpRepliesSent: UInt64 = 0
    /// Requests sent (resolutions, retries, renewals, the announcement).
    public var arpRequestsSent: UInt64 = 0

    // MARK: IPv4

    /// Datagrams that did not decode (truncated, version, header or total length).
    public var ipMalformed: UInt64 = 0
    /// Datagrams whose header checksum did not verify.
    public var ipBadChecksum: UInt64 = 0
    /// Fragments (not reassembled).
    public var ipFragments: UInt64 = 0
    /// Datagrams for another address.
    public var ipNotForUs: UInt64 = 0
    /// Datagrams for the limited or the subnet broadcast address (nothing here listens).
    public var ipBroadcast: UInt64 = 0
    /// Datagrams from a source no host can have (this host, broadcast, multicast, 0/8, 127/8).
    public var ipBadSource: UInt64 = 0
    /// Datagrams of a protocol other than ICMP and TCP.
    public var ipUnknownProtocol: UInt64 = 0

    // MARK: ICMP

    /// Echo requests received.
    public var echoRequests: UInt64 = 0
    /// Echo replies handed to the output (sent, or waiting for ARP).
    public var echoReplies: UInt64 = 0
    /// ICMP messages that did not decode (truncated, a bad code).
    public var icmpMalformed: UInt64 = 0
    /// ICMP messages whose checksum did not verify.
    public var icmpBadChecksum: UInt64 = 0
    /// ICMP messages other than echo requests (replies, errors): ignored.
    public var icmpIgnored: UInt64 = 0

    // MARK: TCP

    /// Segments handed to the transport.
    public var tcpDelivered: UInt64 = 0
    /// Segments that arrived with no transport attached.
    public var tcpNoTransport: UInt64 = 0

    // MARK: sending

    /// Datagrams built by `sendIPv4`.
    public var datagramsSent: UInt64 = 0
    /// Frames the NIC took.
    public var framesSent: UInt64 = 0
    /// Frames the NIC refused (ring full, device failed).
    public var transmitFailed: UInt64 = 0
    /// `sendIPv4` refused: a payload longer than `maximumPayload` (or negative).
    public var sendTooLong: UInt64 = 0
    /// `sendIPv4` refused: a destination that is not a unicast host elsewhere.
    public var sendBadDestination: UInt64 = 0
    /// `sendIPv4` refused: off the subnet with no gateway.
    public var sendNoRoute: UInt64 = 0
    /// `sendIPv4` refused: called from inside another `sendIPv4`'s `fill`.
    public var sendReentered: UInt64 = 0

    public init() {}

    /// Every received frame dropped, whatever the reason.
    public var receiveDrops: UInt64 {
        malformedFrames + vlanFrames + ipv6Frames + otherEtherTypes + notOurMAC + badSourceMAC
            + arpMalformed + arpBadSender + arpConflicts
            + ipMalformed + ipBadChecksum + ipFragments + ipNotForUs + ipBroadcast + ipBadSource + ipUnknownProtocol
            + icmpMalformed + icmpBadChecksum + icmpIgnored + tcpNoTransport
    }

    /// Every datagram `sendIPv4` refused.
    public var sendRefusals: UInt64 { sendTooLong + sendBadDestination + sendNoRoute + sendReentered }
}
