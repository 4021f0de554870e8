//! The kernel's process events connector (netlink `NETLINK_CONNECTOR`, `CN_IDX_PROC`): every
//! exec on the node, as it happens. Needs CAP_NET_ADMIN (a privileged Collector); without it the
//! Collector falls back to polling `/proc`.

use netlink_sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket, protocols};

const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDR: usize = 16;
const CN_MSG: usize = 20;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;

/// A subscribed connector socket.
pub struct Connector {
    socket: TokioSocket,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").finish_non_exhaustive()
    }
}

/// The subscription request: nlmsghdr + cn_msg + `PROC_CN_MCAST_LISTEN`.
fn listen_request() -> Vec<u8> {
    let payload = PROC_CN_MCAST_LISTEN.to_ne_bytes();
    let total = NLMSG_HDR + CN_MSG + payload.len();
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_ne_bytes());
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // ack
    m.extend_from_slice(&u16::try_from(payload.len()).unwrap_or(0).to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&payload);
    m
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The process ids (tgid) of the exec events in one datagram (it may hold several messages).
pub fn exec_pids(datagram: &[u8]) -> Vec<u32> {
    let mut pids = Vec::new();
    let mut at = 0;
    while let Some(len) = u32_at(datagram, at) {
        let len = len as usize;
        if len < NLMSG_HDR || at + len > datagram.len() {
            break;
        }
        let msg = &datagram[at..at + len];
        // proc_event: what(4) cpu(4) timestamp(8), then the union; exec: pid(4) tgid(4).
        let event = NLMSG_HDR + CN_MSG;
        if u32_at(msg, event) == Some(PROC_EVENT_EXEC)
            && let Some(tgid) = u32_at(msg, event + 16 + 4)
        {
            pids.push(tgid);
        }
        at += (len + 3) & !3;
    }
    pids
}

/// The namespaces the kernel reports process events to: a subscription from a task in another
/// PID or user namespace is ignored without an error (`cn_proc_mcast_ctl`), so a Collector
/// outside the host's (a pod without `hostPID`) would open the connector and never hear of an
/// exec. Which of them this process is not in, compared with the host's init (PID 1 of
/// `proc_root`, the host's procfs); empty when it is in both or when that cannot be read (a
/// Collector run on the host itself reads its own procfs and compares alike).
fn foreign_namespaces(proc_root: &std::path::Path) -> Vec<&'static str> {
    ["pid", "user"]
        .into_iter()
        .filter(|ns| {
            let host = std::fs::read_link(proc_root.join("1/ns").join(ns));
            let own = std::fs::read_link(std::path::Path::new("/proc/self/ns").join(ns));
            matches!((host, own), (Ok(h), Ok(o)) if h != o)
        })
        .collect()
}

impl Connector {
    /// Opens and subscribes; fails without the privilege, or outside the host's PID and user
    /// namespaces (where the kernel would send nothing).
    pub async fn open(proc_root: &std::path::Path) -> std::io::Result<Connector> {
        let foreign = foreign_namespaces(proc_root);
        if !foreign.is_empty() {
            return Err(std::io::Error::other(format!(
                "the Collector is not in the host's {} namespace, and the kernel sends process \
                 events only there (run its pod with hostPID and hostNetwork)",
                foreign.join(" and ")
            )));
        }
        let mut socket = TokioSocket::new(protocols::NETLINK_CONNECTOR)?;
        socket.socket_mut().bind(&SocketAddr::new(0, CN_IDX_PROC))?;
        socket
            .send_to(&listen_request(), &SocketAddr::new(0, 0))
            .await?;
        Ok(Connector { socket })
    }

    /// Waits for the next datagram and returns its exec events' pids.
    pub async fn next(&mut self) -> std::io::Result<Vec<u32>> {
        let (datagram, _) = self.socket.recv_from_full().await?;
        Ok(exec_pids(&datagram))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(what: u32, pid: u32, tgid: u32) -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDR + CN_MSG + 24];
        let len = u32::try_from(m.len()).expect("len");
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        let event = NLMSG_HDR + CN_MSG;
        m[event..event + 4].copy_from_slice(&what.to_ne_bytes());
        m[event + 16..event + 20].copy_from_slice(&pid.to_ne_bytes());
        m[event + 20..event + 24].copy_from_slice(&tgid.to_ne_bytes());
        m
    }

    #[test]
    fn a_collector_outside_the_hosts_namespaces_is_told_so() {
        let own = |ns: &str| std::fs::read_link(format!("/proc/self/ns/{ns}")).expect("own ns");
        let root = tempfile::tempdir().expect("tempdir");
        let ns = root.path().join("1/ns");
        std::fs::create_dir_all(&ns).expect("mkdir");
        // Unreadable (no such links): nothing to say.
        assert!(foreign_namespaces(root.path()).is_empty());
        // The host's init in this process's namespaces: the connector may be opened.
        std::os::unix::fs::symlink(own("pid"), ns.join("pid")).expect("link");
        std::os::unix::fs::symlink(own("user"), ns.join("user")).expect("link");
        assert!(foreign_namespaces(root.path()).is_empty());
        // A pod without hostPID: the host's PID namespace is another.
        std::fs::remove_file(ns.join("pid")).expect("rm");
        std::os::unix::fs::symlink("pid:[1]", ns.join("pid")).expect("link");
        assert_eq!(foreign_namespaces(root.path()), ["pid"]);
        std::fs::remove_file(ns.join("user")).expect("rm");
        std::os::unix::fs::symlink("user:[1]", ns.join("user")).expect("link");
        assert_eq!(foreign_namespaces(root.path()), ["pid", "user"]);
        // A procfs of this process's own PID namespace (a Collector run on the host, or this
        // test): its PID 1 shares the namespaces, or cannot be read without privilege.
        assert!(foreign_namespaces(std::path::Path::new("/proc")).is_empty());
    }

    #[test]
    fn exec_events_are_picked_out_of_a_datagram() {
        let mut datagram = message(0x1, 10, 10); // fork
        datagram.extend(message(PROC_EVENT_EXEC, 42, 41));
        datagram.extend(message(0x8000_0000, 42, 41)); // exit
        datagram.extend(message(PROC_EVENT_EXEC, 7, 7));
        assert_eq!(exec_pids(&datagram), [41, 7]);
        assert!(exec_pids(&datagram[..10]).is_empty(), "truncated");
    }

    #[test]
    fn the_request_is_one_well_formed_netlink_message() {
        let m = listen_request();
        assert_eq!(u32_at(&m, 0), Some(u32::try_from(m.len()).expect("len")));
        assert_eq!(u32_at(&m, NLMSG_HDR), Some(CN_IDX_PROC));
        assert_eq!(u32_at(&m, NLMSG_HDR + CN_MSG), Some(PROC_CN_MCAST_LISTEN));
    }
}
