//! Connection counts: the overall limit and the per-client-address limit.
//!
//! At the overall limit (shared by all public listeners) the accept loops stop accepting: each
//! holds at most the one connection it just accepted, unread, and the others wait in the
//! kernel's listen backlog (as with nginx's `worker_connections`), so the connections already
//! open keep being served. Over the per-address limit a connection is accepted and closed at once: one
//! client cannot take all the slots. (Not on PROXY-protocol listeners, whose sockets all come
//! from the balancer.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    total: Arc<Semaphore>,
    /// 0 = no per-address limit.
    per_ip_max: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Held for the life of one connection.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    _total: OwnedSemaphorePermit,
    ip: Option<(Arc<ConnectionLimits>, IpAddr)>,
}

impl ConnectionLimits {
    pub(crate) fn new(max: usize, per_ip_max: usize) -> Arc<Self> {
        Arc::new(Self {
            total: Arc::new(Semaphore::new(max)),
            per_ip_max,
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// Waits until the overall count allows one more connection.
    pub(crate) async fn wait_for_room(&self) -> OwnedSemaphorePermit {
        self.total
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Room for one more connection now, if there is (QUIC has no listen backlog to wait in:
    /// a connection over the limit is refused, and the client tries again or uses TCP).
    pub(crate) fn try_room(&self) -> Option<OwnedSemaphorePermit> {
        self.total.clone().try_acquire_owned().ok()
    }

    /// Counts the connection against its address (if given); `None` when that address is at
    /// its limit.
    pub(crate) fn admit(
        self: &Arc<Self>,
        permit: OwnedSemaphorePermit,
        ip: Option<IpAddr>,
    ) -> Option<ConnectionSlot> {
        let Some(ip) = ip.filter(|_| self.per_ip_max > 0) else {
            return Some(ConnectionSlot {
                _total: permit,
                ip: None,
            });
        };
        let mut per_ip = self.per_ip.lock().expect("not poisoned");
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= self.per_ip_max {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            _total: permit,
            ip: Some((self.clone(), ip)),
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Some((limits, ip)) = self.ip.take() {
            let mut per_ip = limits.per_ip.lock().expect("not poisoned");
            if let Some(count) = per_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn per_address_limit_counts_and_releases() {
        let limits = ConnectionLimits::new(10, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = limits.admit(limits.wait_for_room().await, Some(a)).unwrap();
        let _second = limits.admit(limits.wait_for_room().await, Some(a)).unwrap();
        assert!(limits
            .admit(limits.wait_for_room().await, Some(a))
            .is_none());
        assert!(limits
            .admit(limits.wait_for_room().await, Some(b))
            .is_some());
        drop(first);
        assert!(limits
            .admit(limits.wait_for_room().await, Some(a))
            .is_some());
    }

    #[tokio::test]
    async fn overall_limit_waits() {
        let limits = ConnectionLimits::new(1, 0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let held = limits
            .admit(limits.wait_for_room().await, Some(ip))
            .unwrap();
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(20), limits.wait_for_room());
        assert!(waiting.await.is_err());
        drop(held);
        let _ = limits.wait_for_room().await;
    }
}
