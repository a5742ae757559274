//! SERVER_NAME from the request's host (RFC 3875 §4.1.14).

/// The host part of a `Host` header or `:authority` (`name`, `name:port`, `[v6]`, `[v6]:port`),
/// as SERVER_NAME wants it: the port removed, an IPv6 literal kept in its brackets
/// (`server-name = hostname | ipv4-address | ( "[" ipv6-address "]" )`). `None` when there is
/// no host or it is malformed (an unclosed bracket, anything after `]` but a port), so the
/// caller falls back to the site's configured name.
pub fn server_name_from_host(host: &str) -> Option<&str> {
    let name = if host.starts_with('[') {
        let close = host.find(']')?;
        let (literal, rest) = host.split_at(close + 1);
        if !(rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        literal
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return None,
            None => host,
        }
    };
    // A bare name cannot hold a colon (an unbracketed IPv6 address is ambiguous) or brackets.
    let bare_name_ok = name.starts_with('[') || !name.contains([':', '[', ']']);
    (!name.is_empty() && bare_name_ok).then_some(name)
}

/// Digits only; an empty port (`host:`) is allowed by RFC 3986's `port = *DIGIT`.
fn is_port(port: &str) -> bool {
    port.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::server_name_from_host;

    #[test]
    fn port_is_removed_and_ipv6_keeps_its_brackets() {
        for (host, expected) in [
            ("example.test", Some("example.test")),
            ("example.test:8080", Some("example.test")),
            ("example.test:", Some("example.test")),
            ("127.0.0.1:80", Some("127.0.0.1")),
            ("[::1]", Some("[::1]")),
            ("[::1]:8443", Some("[::1]")),
            ("[fe80::1%25eth0]:1", Some("[fe80::1%25eth0]")),
            ("", None),
            (":80", None),
            ("[::1", None),
            ("[::1]x", None),
            ("[::1]:8a", None),
            ("a:b:c", None),
            ("a:b:1", None),
            ("x]:1", None),
            ("example.test:http", None),
        ] {
            assert_eq!(server_name_from_host(host), expected, "host {host:?}");
        }
    }
}
