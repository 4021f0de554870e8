//! `/proc/net/{tcp,tcp6,udp,udp6}` parsing; pure.
//!
//! Addresses are printed as the kernel's in-memory words in host byte order (`0100007F` is
//! 127.0.0.1 on little-endian machines), ports as plain hex, and each socket with its inode,
//! which `/proc/PID/fd/*` links (`socket:[inode]`) tie to processes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// Socket states that matter here (the kernel's `TCP_*` numbers; UDP reuses them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Established,
    Listen,
    /// UDP bound and not connected (`TCP_CLOSE`, 07).
    Unconnected,
    Other(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub protocol: Protocol,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: State,
    pub uid: u32,
    /// 0 for sockets no process holds any more (TIME_WAIT and the like).
    pub inode: u64,
}

fn ipv4(hex: &str) -> Option<Ipv4Addr> {
    let word = u32::from_str_radix(hex, 16).ok()?;
    Some(Ipv4Addr::from(word.to_ne_bytes()))
}

fn ipv6(hex: &str) -> Option<Ipv6Addr> {
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for i in 0..4 {
        let word = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
        bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
    }
    Some(Ipv6Addr::from(bytes))
}

fn address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(ipv4(ip)?),
        32 => {
            let v6 = ipv6(ip)?;
            // IPv4-mapped (dual-stack sockets): report the IPv4 address users know.
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Parses one table; malformed lines are skipped (a truncated read must not fail the table).
pub fn parse(protocol: Protocol, table: &str) -> Vec<Socket> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let _slot = f.next()?;
            let local = address(f.next()?)?;
            let remote = address(f.next()?)?;
            let state = u8::from_str_radix(f.next()?, 16).ok()?;
            let _queues = f.next()?;
            let _timer = f.next()?;
            let _retransmits = f.next()?;
            let uid = f.next()?.parse().ok()?;
            let _timeout = f.next()?;
            let inode = f.next()?.parse().ok()?;
            Some(Socket {
                protocol,
                local,
                remote,
                state: match state {
                    0x01 => State::Established,
                    0x0A => State::Listen,
                    0x07 => State::Unconnected,
                    s => State::Other(s),
                },
                uid,
                inode,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The layout of /proc/net/tcp, tcp6 and udp on a little-endian Linux host.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 48213 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A2C4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 48790 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000     0        0 48791 1 0000000000000000 20 4 31 10 -1
   3: 0F02000A:D5E2 22D8B85D:01BB 06 00000000:00000000 03:00000A5C 00000000     0        0 0 3 0000000000000000
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21377 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F91 0000000000000000FFFF00000100007F:B00C 01 00000000:00000000 00:00000000 00000000     0        0 51001 1 0000000000000000 20 4 30 10 -1
   2: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 22000 1 0000000000000000 100 0 0 10 0
";
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  512: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 17744 2 0000000000000000 0
";

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn ipv4_sockets_with_states_and_inodes() {
        let sockets = parse(Protocol::Tcp, TCP);
        assert_eq!(sockets.len(), 4);
        assert_eq!(sockets[0].local, addr("127.0.0.1:8080"));
        assert_eq!(sockets[0].state, State::Listen);
        assert_eq!(sockets[0].inode, 48213);
        assert_eq!(sockets[1].local, addr("127.0.0.1:41668"));
        assert_eq!(sockets[1].remote, addr("127.0.0.1:8080"));
        assert_eq!(sockets[1].state, State::Established);
        assert_eq!(sockets[1].uid, 1000);
        assert_eq!(sockets[3].remote, addr("93.184.216.34:443"));
        assert_eq!(sockets[3].local, addr("10.0.2.15:54754"));
        assert_eq!(sockets[3].inode, 0, "TIME_WAIT belongs to no process");
    }

    #[test]
    fn ipv6_and_mapped_ipv4_sockets() {
        let sockets = parse(Protocol::Tcp, TCP6);
        assert_eq!(sockets[0].local, addr("[::]:22"));
        assert_eq!(sockets[1].local, addr("127.0.0.1:8081"), "v4-mapped");
        assert_eq!(sockets[1].remote, addr("127.0.0.1:45068"));
        assert_eq!(sockets[2].local, addr("[::1]:631"));
    }

    #[test]
    fn udp_and_malformed_lines() {
        let sockets = parse(Protocol::Udp, UDP);
        assert_eq!(sockets.len(), 1);
        assert_eq!(sockets[0].local, addr("127.0.0.53:53"));
        assert_eq!(sockets[0].state, State::Unconnected);
        let broken = "header\n 0: 0100007F:1F90\n 1: zz:zz 00000000:0000 0A\n";
        assert!(parse(Protocol::Tcp, broken).is_empty());
    }

    #[test]
    fn the_live_table_of_this_machine_parses() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let table = std::fs::read_to_string("/proc/net/tcp").expect("read");
        let sockets = parse(Protocol::Tcp, &table);
        assert!(
            sockets
                .iter()
                .any(|s| s.state == State::Listen && s.local == addr(&format!("127.0.0.1:{port}"))),
            "our listener on {port} is in the table"
        );
    }
}
