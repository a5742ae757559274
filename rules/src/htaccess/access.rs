//! Access control as Apache 2.4 decides it: mod_authz_core's `Require` trees and
//! mod_access_compat's 2.2-style `Order`/`Allow`/`Deny`/`Satisfy`, each with its own merge rule
//! (see `eval`). This file holds the compiled forms and how each is checked for one request.

use std::net::IpAddr;

use crate::clients::AddressList;
use crate::rewrite::RewriteContext;

/// Which methods a directive inside `<Limit>`/`<LimitExcept>` counts for. `GET` includes `HEAD`,
/// as Apache gives both one method number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum Methods {
    #[default]
    All,
    Only(Vec<String>),
    Except(Vec<String>),
}

impl Methods {
    pub(super) fn includes(&self, method: &str) -> bool {
        let method = if method == "HEAD" { "GET" } else { method };
        match self {
            Self::All => true,
            Self::Only(list) => list.iter().any(|m| m == method),
            Self::Except(list) => !list.iter().any(|m| m == method),
        }
    }
}

/// What the access checks look at.
pub(super) struct Facts<'a> {
    pub method: &'a str,
    pub client: IpAddr,
    /// The authenticated user, once there is one.
    pub user: Option<&'a str>,
    /// Variables `SetEnvIf` set: mod_setenvif runs before the access checks, so `Allow from
    /// env=…` and `Require env …` see them (`SetEnv` runs after, and is not seen).
    pub env: &'a [(String, String)],
    pub ctx: &'a dyn RewriteContext,
}

impl Facts<'_> {
    fn has_env(&self, name: &str) -> bool {
        self.env.iter().any(|(n, _)| n == name)
            || self.ctx.variable(&format!("ENV:{name}")).is_some()
    }
}

/// mod_authz_core's outcome for one `Require` or container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Authz {
    Granted,
    Denied,
    /// Denied unless an authenticated user changes the answer.
    DeniedNoUser,
    Neutral,
}

/// A `Require` line or a `<RequireAll|Any|None>` container.
#[derive(Debug, Clone)]
pub(super) enum Require {
    Leaf {
        provider: Provider,
        negate: bool,
        methods: Methods,
    },
    Group {
        /// `true`: every child (RequireAll); `false`: one child (RequireAny, RequireNone).
        all: bool,
        /// RequireNone (RequireAny, negated) and RequireNotAll (RequireAll, negated).
        negate: bool,
        children: Vec<Require>,
    },
}

#[derive(Debug, Clone)]
pub(super) enum Provider {
    /// `all granted` (`true`) or `all denied`.
    All(bool),
    Ip(AddressList),
    /// `local`: loopback clients.
    Local,
    ValidUser,
    User(Vec<String>),
    Method(Vec<String>),
    /// `env VAR …`: one of the variables is set.
    Env(Vec<String>),
}

impl Require {
    /// Whether this (sub)tree has a non-negated member, as Apache requires of every container.
    pub(super) fn can_grant(&self) -> bool {
        match self {
            Self::Leaf { negate, .. } | Self::Group { negate, .. } => !negate,
        }
    }

    /// Whether this (sub)tree may look at the client's address.
    pub(super) fn reads_client_address(&self) -> bool {
        match self {
            Self::Leaf { provider, .. } => matches!(provider, Provider::Ip(_) | Provider::Local),
            Self::Group { children, .. } => children.iter().any(Self::reads_client_address),
        }
    }

    /// Whether a member counts for `method` (a container: when one of its members does).
    pub(super) fn applies(&self, method: &str) -> bool {
        match self {
            Self::Leaf { methods, .. } => methods.includes(method),
            Self::Group { children, .. } => children.iter().any(|c| c.applies(method)),
        }
    }

    /// mod_authz_core's `apply_authz_sections`; `in_all`: the container around this one is a
    /// RequireAll (a member limited to other methods then counts as granted, else as neutral).
    pub(super) fn check(&self, in_all: bool, facts: &Facts<'_>) -> Authz {
        if !self.applies(facts.method) {
            return if in_all {
                Authz::Granted
            } else {
                Authz::Neutral
            };
        }
        let (result, negate) = match self {
            Self::Leaf {
                provider, negate, ..
            } => (provider.check(facts), *negate),
            Self::Group {
                all,
                negate,
                children,
            } => (
                combine(*all, children.iter().map(|c| c.check(*all, facts))),
                *negate,
            ),
        };
        if !negate {
            return result;
        }
        // A negation can only take away: "not denied" does not grant.
        match result {
            Authz::Granted => Authz::Denied,
            Authz::Denied | Authz::DeniedNoUser | Authz::Neutral => Authz::Neutral,
        }
    }
}

/// A container's result from its members' (lazily: the first that decides stops the rest), as
/// `apply_authz_sections` combines them: `all` for RequireAll, else RequireAny.
pub(super) fn combine(all: bool, results: impl Iterator<Item = Authz>) -> Authz {
    let mut result = Authz::Neutral;
    for child in results {
        if all {
            if child == Authz::Denied {
                return child;
            }
            if (child == Authz::DeniedNoUser && result != Authz::Denied) || result == Authz::Neutral
            {
                result = child;
            }
        } else {
            if child == Authz::Granted {
                return child;
            }
            if (child == Authz::DeniedNoUser && result == Authz::Denied) || result == Authz::Neutral
            {
                result = child;
            }
        }
    }
    result
}

impl Provider {
    fn check(&self, facts: &Facts<'_>) -> Authz {
        let (client, user) = (facts.client, facts.user);
        let yes = |b: bool| if b { Authz::Granted } else { Authz::Denied };
        match self {
            Self::All(granted) => yes(*granted),
            Self::Ip(list) => yes(list.contains(client)),
            // Loopback, or the server's own address (as mod_authz_host's `local`).
            Self::Local => yes(client.is_loopback()
                || matches!(client, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()))
                || facts
                    .ctx
                    .variable("SERVER_ADDR")
                    .and_then(|a| a.parse::<IpAddr>().ok())
                    .is_some_and(|server| server == client)),
            Self::Method(list) => yes(Methods::Only(list.clone()).includes(facts.method)),
            Self::Env(names) => yes(names.iter().any(|n| facts.has_env(n))),
            Self::ValidUser => user.map_or(Authz::DeniedNoUser, |_| Authz::Granted),
            Self::User(list) => {
                user.map_or(Authz::DeniedNoUser, |u| yes(list.iter().any(|l| l == u)))
            }
        }
    }
}

/// mod_access_compat's configuration of one scope (it has no merge: the last scope that uses
/// any of its directives decides alone).
#[derive(Debug, Clone, Default)]
pub(super) struct Compat {
    pub order: Vec<(Methods, Order)>,
    pub allow: Vec<(Methods, Hosts)>,
    pub deny: Vec<(Methods, Hosts)>,
    /// `Satisfy Any` (`true`) or `All`.
    pub satisfy_any: Vec<(Methods, bool)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    AllowDeny,
    DenyAllow,
    MutualFailure,
}

/// What `Allow from`/`Deny from` name.
#[derive(Debug, Clone)]
pub(super) enum Hosts {
    Nets(AddressList),
    /// `env=NAME` (`env=!NAME`: `true`), from the variables the front end sets.
    Env(String, bool),
}

impl Hosts {
    fn matches(&self, facts: &Facts<'_>) -> bool {
        match self {
            Self::Nets(list) => list.contains(facts.client),
            Self::Env(name, negate) => facts.has_env(name) != *negate,
        }
    }
}

impl Compat {
    /// mod_access_compat's `check_dir_access`: whether the client passes the host check.
    pub(super) fn admits(&self, facts: &Facts<'_>) -> bool {
        let method = facts.method;
        let order = last_for(&self.order, method).unwrap_or(Order::DenyAllow);
        let find = |list: &[(Methods, Hosts)]| {
            list.iter()
                .any(|(m, hosts)| m.includes(method) && hosts.matches(facts))
        };
        let (allowed, denied) = (find(&self.allow), find(&self.deny));
        match order {
            Order::AllowDeny | Order::MutualFailure => allowed && !denied,
            Order::DenyAllow => !denied || allowed,
        }
    }

    /// Whether an `Allow from`/`Deny from` names addresses (rather than only variables).
    pub(super) fn reads_client_address(&self) -> bool {
        self.allow
            .iter()
            .chain(&self.deny)
            .any(|(_, hosts)| matches!(hosts, Hosts::Nets(_)))
    }

    pub(super) fn satisfy_any(&self, method: &str) -> bool {
        last_for(&self.satisfy_any, method).unwrap_or(false)
    }
}

fn last_for<T: Copy>(list: &[(Methods, T)], method: &str) -> Option<T> {
    list.iter()
        .rev()
        .find(|(m, _)| m.includes(method))
        .map(|(_, v)| *v)
}

/// `Allow from`/`Deny from`/`Require ip` arguments: addresses, CIDR networks, `a.b.c.d/m.m.m.m`
/// net masks and Apache's partial addresses (`10.1` is `10.1.0.0/16`). Host names are refused:
/// they need DNS, which paddock does not do on the request path.
pub(super) fn parse_hosts(items: &[String]) -> Result<AddressList, String> {
    let mut nets = Vec::new();
    for item in items {
        nets.push(parse_host(item).ok_or_else(|| {
            format!("`{item}` is not an address paddock can check (host names are not supported)")
        })?);
    }
    AddressList::parse(&nets).map_err(|e| e.to_string())
}

fn parse_host(item: &str) -> Option<String> {
    if item.eq_ignore_ascii_case("all") {
        return Some("all".into());
    }
    if let Some((addr, mask)) = item.split_once('/') {
        if let Ok(mask) = mask.parse::<std::net::Ipv4Addr>() {
            let bits = u32::from(mask);
            // Only contiguous masks mean a network.
            if bits.leading_ones() + bits.trailing_zeros() != 32 {
                return None;
            }
            return Some(format!("{addr}/{}", bits.leading_ones()));
        }
        return item
            .parse::<ipnet::IpNet>()
            .is_ok()
            .then(|| item.to_string());
    }
    if item.parse::<IpAddr>().is_ok() {
        return Some(item.to_string());
    }
    // Partial IPv4: one to three leading octets, an optional trailing dot.
    let octets: Vec<&str> = item.trim_end_matches('.').split('.').collect();
    if (1..4).contains(&octets.len())
        && octets
            .iter()
            .all(|o| !o.is_empty() && o.len() <= 3 && o.parse::<u8>().is_ok())
    {
        let mut full = octets.clone();
        full.resize(4, "0");
        return Some(format!("{}/{}", full.join("."), octets.len() * 8));
    }
    None
}
