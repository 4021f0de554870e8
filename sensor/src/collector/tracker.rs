//! Per-container rate limits and connection tracking with afterglow; pure (time is passed in).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::netstat::Protocol;

/// A token bucket per container: `burst` events at once, `per_second` sustained.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    buckets: HashMap<String, (f64, Duration)>,
    /// Events refused since start.
    pub limited: u64,
}

impl RateLimiter {
    pub fn new(burst: u32, per_second: u32) -> RateLimiter {
        RateLimiter {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_second),
            buckets: HashMap::new(),
            limited: 0,
        }
    }

    /// Whether one more event of `container` may go out at `now` (time since an epoch).
    pub fn allow(&mut self, container: &str, now: Duration) -> bool {
        let (tokens, at) = self
            .buckets
            .entry(container.to_string())
            .or_insert((self.burst, now));
        let elapsed = now.saturating_sub(*at).as_secs_f64();
        *tokens = (*tokens + elapsed * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            self.limited += 1;
            false
        }
    }

    /// Forgets containers not seen in `keep`.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.buckets.retain(|c, _| keep(c));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Client,
    Server,
    Listen,
}

/// What identifies a connection for reporting: ephemeral ports are left out, so repeated
/// short connections between the same peers on the same service port are one connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub container: String,
    pub protocol: Protocol,
    pub role: Role,
    /// Client: the remote service address; server: the local service port and the client's
    /// address (port 0); listen: the local address.
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl FlowKey {
    pub fn new(
        container: &str,
        protocol: Protocol,
        role: Role,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> FlowKey {
        let unspecified = SocketAddr::new(IpAddr::from([0u8, 0, 0, 0]), 0);
        let (local, remote) = match role {
            Role::Client => (SocketAddr::new(local.ip(), 0), remote),
            Role::Server => (local, SocketAddr::new(remote.ip(), 0)),
            Role::Listen => (local, unspecified),
        };
        FlowKey {
            container: container.to_string(),
            protocol,
            role,
            local,
            remote,
        }
    }
}

/// Who held the connection when it was last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub exe: String,
    pub pod_uid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowUpdate {
    pub key: FlowKey,
    pub holder: Holder,
    pub first_seen: Duration,
    pub last_seen: Duration,
    pub closed: bool,
}

#[derive(Debug)]
struct Tracked {
    holder: Holder,
    first_seen: Duration,
    last_seen: Duration,
}

/// Reports a connection when first seen and when it has been gone for the afterglow period.
#[derive(Debug)]
pub struct ConnectionTracker {
    afterglow: Duration,
    open: HashMap<FlowKey, Tracked>,
}

impl ConnectionTracker {
    pub fn new(afterglow: Duration) -> ConnectionTracker {
        ConnectionTracker {
            afterglow,
            open: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// One scan's connections at `now`; returns what opened and what closed.
    pub fn observe(
        &mut self,
        now: Duration,
        present: impl IntoIterator<Item = (FlowKey, Holder)>,
    ) -> Vec<FlowUpdate> {
        let mut updates = Vec::new();
        for (key, holder) in present {
            match self.open.get_mut(&key) {
                Some(t) => {
                    t.last_seen = now;
                    t.holder = holder;
                }
                None => {
                    updates.push(FlowUpdate {
                        key: key.clone(),
                        holder: holder.clone(),
                        first_seen: now,
                        last_seen: now,
                        closed: false,
                    });
                    self.open.insert(
                        key,
                        Tracked {
                            holder,
                            first_seen: now,
                            last_seen: now,
                        },
                    );
                }
            }
        }
        let expired: Vec<FlowKey> = self
            .open
            .iter()
            .filter(|(_, t)| now.saturating_sub(t.last_seen) > self.afterglow)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            if let Some(t) = self.open.remove(&key) {
                updates.push(FlowUpdate {
                    key,
                    holder: t.holder,
                    first_seen: t.first_seen,
                    last_seen: t.last_seen,
                    closed: true,
                });
            }
        }
        updates.sort_by(|a, b| (a.closed, &a.key).cmp(&(b.closed, &b.key)));
        updates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn holder() -> Holder {
        Holder {
            pid: 7,
            exe: "/usr/bin/curl".into(),
            pod_uid: None,
        }
    }

    fn client(local_port: u16) -> FlowKey {
        FlowKey::new(
            "c1",
            Protocol::Tcp,
            Role::Client,
            format!("10.0.0.5:{local_port}").parse().expect("addr"),
            "10.0.0.9:5432".parse().expect("addr"),
        )
    }

    #[test]
    fn repeated_short_connections_within_the_afterglow_are_one_connection() {
        let mut t = ConnectionTracker::new(secs(30));
        let opened = t.observe(secs(0), [(client(40001), holder())]);
        assert_eq!(opened.len(), 1);
        assert!(!opened[0].closed);
        // The connection closed; a new one from another ephemeral port 10 s later.
        assert!(t.observe(secs(5), []).is_empty(), "still in afterglow");
        assert!(
            t.observe(secs(10), [(client(40377), holder())]).is_empty(),
            "same peers and service port: not a new connection"
        );
        assert!(t.observe(secs(39), []).is_empty());
        let closed = t.observe(secs(41), []);
        assert_eq!(closed.len(), 1);
        assert!(closed[0].closed);
        assert_eq!(closed[0].first_seen, secs(0));
        assert_eq!(closed[0].last_seen, secs(10));
        assert!(t.is_empty());
    }

    #[test]
    fn server_side_connections_keep_the_service_port_and_the_client_address() {
        let a = FlowKey::new(
            "c",
            Protocol::Tcp,
            Role::Server,
            "10.0.0.9:5432".parse().expect("addr"),
            "10.0.0.5:40001".parse().expect("addr"),
        );
        let b = FlowKey::new(
            "c",
            Protocol::Tcp,
            Role::Server,
            "10.0.0.9:5432".parse().expect("addr"),
            "10.0.0.5:40377".parse().expect("addr"),
        );
        assert_eq!(a, b);
        assert_eq!(a.local.port(), 5432);
        assert_eq!(a.remote.port(), 0);
    }

    #[test]
    fn the_rate_limit_allows_a_burst_then_the_sustained_rate_per_container() {
        let mut r = RateLimiter::new(3, 2);
        let now = secs(100);
        assert!((0..3).all(|_| r.allow("a", now)));
        assert!(!r.allow("a", now));
        assert!(r.allow("b", now), "containers are limited separately");
        assert!(
            r.allow("a", now + Duration::from_millis(500)),
            "one token after 0.5 s at 2/s"
        );
        assert!(!r.allow("a", now + Duration::from_millis(500)));
        assert_eq!(r.limited, 2);
    }
}
