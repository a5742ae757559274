//! The client's address and scheme behind trusted proxies.
//!
//! `Forwarded` (RFC 7239) and `X-Forwarded-For` / `X-Forwarded-Proto` are believed only when the
//! direct peer (after any PROXY protocol header) is in `client_address.trusted_proxies`; from
//! anyone else they are ordinary request headers that the application sees but paddock ignores.
//! The chain is read from the right (the hop nearest to paddock) and trusted hops are skipped:
//! the first untrusted address is the client. This stops a client from choosing its own address
//! by sending a forged header through a trusted proxy that appends to it. When `Forwarded` is
//! present it wins over `X-Forwarded-For`. A value that is not an address (`unknown`, an
//! obfuscated `_name`) ends the walk at the hop that wrote it.
//!
//! The result becomes REMOTE_ADDR (REMOTE_PORT 0: the headers carry no port), HTTPS for the
//! worker when the proxy says the client used https, and the address in the access log.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::HeaderMap;
use protocol::control::IpNetwork;

use crate::upstream::buffered::ConnInfo;

/// The connection as the application should see it for this request.
pub(crate) fn effective(
    trusted: &[IpNetwork],
    conn: &Arc<ConnInfo>,
    headers: &HeaderMap,
) -> Arc<ConnInfo> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if trusted.is_empty() || !is_trusted(conn.peer.ip()) {
        return conn.clone();
    }
    let (hops, protos) = match header_values(headers, "forwarded") {
        Some(values) => forwarded(&values),
        None => (
            header_values(headers, "x-forwarded-for")
                .map(|v| list(&v).map(parse_node).collect())
                .unwrap_or_default(),
            header_values(headers, "x-forwarded-proto")
                .map(|v| list(&v).map(|s| Some(s.to_ascii_lowercase())).collect())
                .unwrap_or_default(),
        ),
    };
    let mut client = conn.peer.ip();
    let mut proto = None;
    for (i, hop) in hops.iter().enumerate().rev() {
        let Some(ip) = hop else { break };
        client = *ip;
        // X-Forwarded-Proto usually has one value for the whole chain; Forwarded has one per hop.
        proto = protos.get(i).or(protos.first()).cloned().flatten();
        if !is_trusted(*ip) {
            break;
        }
    }
    if client == conn.peer.ip() && proto.is_none() {
        return conn.clone();
    }
    Arc::new(ConnInfo {
        peer: SocketAddr::new(client, 0),
        https: proto.map_or(conn.https, |p| p == "https"),
        ..(**conn).clone()
    })
}

fn header_values(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// `for=` and `proto=` of each element of a Forwarded header.
fn forwarded(value: &str) -> (Vec<Option<IpAddr>>, Vec<Option<String>>) {
    let mut hops = Vec::new();
    let mut protos = Vec::new();
    for element in list(value) {
        let mut node = None;
        let mut proto = None;
        for pair in element.split(';') {
            let Some((key, value)) = pair.trim().split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "for" => node = Some(parse_node(value)),
                "proto" => proto = Some(value.to_ascii_lowercase()),
                _ => {}
            }
        }
        if let Some(node) = node {
            hops.push(node);
            protos.push(proto);
        }
    }
    (hops, protos)
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`, `2001:db8::1`; `None` for anything else.
fn parse_node(value: &str) -> Option<IpAddr> {
    let value = value.trim().trim_matches('"');
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    value.parse().ok().or_else(|| {
        let (ip, port) = value.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        ip.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn conn(peer: &str) -> Arc<ConnInfo> {
        Arc::new(ConnInfo {
            local: "127.0.0.1:80".parse().unwrap(),
            peer: format!("{peer}:5000").parse().unwrap(),
            https: false,
            sni: None,
            tracker: crate::metrics::connections::detached_tracker(),
            alt_svc: None,
        })
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn headers_from_untrusted_peers_are_ignored() {
        let trusted = [IpNetwork::parse("10.0.0.0/8").unwrap()];
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        let seen = effective(&trusted, &conn("198.51.100.1"), &h);
        assert_eq!(seen.peer.ip().to_string(), "198.51.100.1");
        assert_eq!(seen.peer.port(), 5000);
    }

    #[test]
    fn rightmost_untrusted_address_is_the_client() {
        let trusted = [IpNetwork::parse("10.0.0.0/8").unwrap()];
        // The client forged "1.2.3.4"; the trusted proxy appended the real address.
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4, 203.0.113.9"),
            ("x-forwarded-for", "10.0.0.2"),
            ("x-forwarded-proto", "https"),
        ]);
        let seen = effective(&trusted, &conn("10.0.0.1"), &h);
        assert_eq!(seen.peer.ip().to_string(), "203.0.113.9");
        assert!(seen.https);
    }

    #[test]
    fn forwarded_wins_and_understands_ipv6_and_ports() {
        let trusted = [IpNetwork::parse("10.0.0.0/8").unwrap()];
        let h = headers(&[
            (
                "forwarded",
                "for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.0.0.3",
            ),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        let seen = effective(&trusted, &conn("10.0.0.1"), &h);
        assert_eq!(seen.peer.ip().to_string(), "2001:db8:cafe::17");
        assert!(seen.https);
        // An obfuscated node stops the walk at the hop that wrote it.
        let h = headers(&[("forwarded", "for=198.51.100.7, for=_hidden, for=10.0.0.3")]);
        let seen = effective(&trusted, &conn("10.0.0.1"), &h);
        assert_eq!(seen.peer.ip().to_string(), "10.0.0.3");
    }
}
