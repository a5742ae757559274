//! Allow and deny lists of client addresses (`allow 10.0.0.0/8` in nginx, `Require ip` in Apache).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::RuleError;

/// Addresses and networks; a bare address is a network of one.
#[derive(Debug, Clone, Default)]
pub struct AddressList(Vec<IpNet>);

impl AddressList {
    /// Parses `192.0.2.1`, `10.0.0.0/8`, `::1`, `2001:db8::/32`; `all` is every address.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, RuleError> {
        let mut nets = Vec::new();
        for item in items {
            let item = item.as_ref().trim();
            if item.eq_ignore_ascii_case("all") {
                nets.push("0.0.0.0/0".parse().expect("valid"));
                nets.push("::/0".parse().expect("valid"));
                continue;
            }
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => item
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| RuleError::Address(item.to_string()))?,
            };
            nets.push(net.trunc());
        }
        Ok(Self(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `client` is in the list. An IPv4 client seen as `::ffff:a.b.c.d` (a dual-stack
    /// listener) matches the IPv4 networks.
    pub fn contains(&self, client: IpAddr) -> bool {
        let client = canonical(client);
        self.0.iter().any(|net| net.contains(&client))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An allow list and a deny list: a client is let in when it is not denied and, if the allow
/// list is not empty, is in it.
#[derive(Debug, Clone, Default)]
pub struct ClientFilter {
    pub allow: AddressList,
    pub deny: AddressList,
}

impl ClientFilter {
    pub fn admits(&self, client: IpAddr) -> bool {
        !self.deny.contains(client) && (self.allow.is_empty() || self.allow.contains(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_addresses_and_mapped_ipv4() {
        let list = AddressList::parse(&["10.0.0.0/8", "::1", "192.0.2.7"]).unwrap();
        assert!(list.contains(ip("10.1.2.3")));
        assert!(list.contains(ip("::ffff:10.9.9.9")));
        assert!(list.contains(ip("::1")));
        assert!(list.contains(ip("192.0.2.7")));
        assert!(!list.contains(ip("192.0.2.8")));
        assert!(AddressList::parse(&["10.0.0.300"]).is_err());
    }

    #[test]
    fn deny_wins_over_allow() {
        let filter = ClientFilter {
            allow: AddressList::parse(&["127.0.0.0/8"]).unwrap(),
            deny: AddressList::parse(&["127.0.0.2"]).unwrap(),
        };
        assert!(filter.admits(ip("127.0.0.1")));
        assert!(!filter.admits(ip("127.0.0.2")));
        assert!(!filter.admits(ip("192.0.2.1")));
        let only_deny = ClientFilter {
            allow: AddressList::default(),
            deny: AddressList::parse(&["all"]).unwrap(),
        };
        assert!(!only_deny.admits(ip("::1")));
    }
}
