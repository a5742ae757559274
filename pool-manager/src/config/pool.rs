//! Validation of `[pools.NAME]`: mode, sizing, recycling, isolation.
//!
//! Option names follow php-fpm and Apache where they mean the same thing; docs/configuration.md
//! lists each next to its php-fpm and Apache equivalent.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use protocol::control::{PoolDispatchSpec, WorkerProtocol};

use super::error::{invalid, Invalid};
use super::paths::existing_dir;
use super::raw::{RawBuiltin, RawCpuAffinity, RawPool, RawPoolMode, RawScheduling, RawSizing};
use super::{CpuAffinity, PoolConfig, PoolMode, Recycle, Rlimits, Scheduling, Sizing};

pub(super) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
pub(super) const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(30);
pub(super) const DEFAULT_QUEUE_MAX: usize = 1024;
const DEFAULT_WORKERS: u32 = 4;
/// The built-in CGI runner's per-script deadline (fcgiwrap has none; Apache's `Timeout` is 60 s).
const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_WORKERS: u32 = 16;
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Apache's and php-fpm's cap on spawns per second.
const DEFAULT_SPAWN_RATE: u32 = 32;
/// `send_ahead_below`: see `AHEAD_PAYS_BELOW` in the front end's dispatch for the reasoning.
const DEFAULT_SEND_AHEAD_BELOW_US: u64 = 500;
const MAX_WORKERS: u32 = 4096;
const MAX_THREADS: u32 = 1024;

pub(super) fn validate_pool(
    name: &str,
    pool: &RawPool,
    base: &Path,
) -> Result<PoolConfig, Invalid> {
    let fail_at = |key: &str, message: String| invalid(&["pools", name, key], message);
    let fail = |key: &str, message: String| Err(fail_at(key, message));
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(
            &["pools", name],
            "pool names use letters, digits, - and _ only",
        ));
    }

    let (mode, slots_per_worker) = match pool.mode {
        RawPoolMode::Prefork => {
            if pool.threads.is_some() {
                return fail("threads", "prefork workers take one request at a time; use mode = \"threaded\" for threads".into());
            }
            (PoolMode::Prefork, 1)
        }
        RawPoolMode::Threaded => {
            let threads = pool.threads.unwrap_or(8);
            if !(1..=MAX_THREADS).contains(&threads) {
                return fail("threads", format!("must be between 1 and {MAX_THREADS}"));
            }
            (PoolMode::Threaded, threads)
        }
        RawPoolMode::External => {
            let connections = pool.connections.unwrap_or(DEFAULT_WORKERS);
            if !(1..=MAX_THREADS).contains(&connections) {
                return fail(
                    "connections",
                    format!("must be between 1 and {MAX_THREADS}"),
                );
            }
            (PoolMode::External, connections)
        }
    };
    if pool.script_timeout.is_some() && pool.builtin != Some(RawBuiltin::Cgi) {
        return fail(
            "script_timeout",
            "applies to builtin = \"cgi\" pools; use request_timeout for others".into(),
        );
    }
    let command = match (mode, &pool.command, pool.builtin) {
        (_, Some(_), Some(_)) => {
            return fail(
                "builtin",
                "give either `command` or `builtin`, not both".into(),
            )
        }
        (PoolMode::External, None, Some(_)) => {
            return fail(
                "builtin",
                "external pools are not started by paddock".into(),
            )
        }
        (PoolMode::Prefork, None, Some(RawBuiltin::Php)) => super::php::command(name, pool, base)?,
        (_, None, Some(RawBuiltin::Php)) => {
            return fail(
                "builtin",
                "builtin = \"php\" runs one request per process (PHP's non-thread-safe build): \
                 use mode = \"prefork\""
                    .into(),
            )
        }
        (PoolMode::Threaded, None, Some(RawBuiltin::Wsgi)) => super::wsgi::command(name, pool)?,
        (_, None, Some(RawBuiltin::Wsgi)) => {
            return fail(
                "builtin",
                "builtin = \"wsgi\" runs `threads` requests a process (a Python application \
                 must be thread-safe for it): use mode = \"threaded\""
                    .into(),
            )
        }
        (_, None, Some(RawBuiltin::Cgi)) => {
            let exe = std::env::current_exe().map_err(|e| {
                fail_at("builtin", format!("cannot locate the paddock binary: {e}"))
            })?;
            let timeout = pool.script_timeout.map_or(DEFAULT_SCRIPT_TIMEOUT, |d| d.0);
            vec![
                exe.to_string_lossy().into_owned(),
                "cgi-runner".into(),
                "--threads".into(),
                slots_per_worker.to_string(),
                "--timeout-ms".into(),
                timeout.as_millis().to_string(),
            ]
        }
        (PoolMode::External, Some(_), None) => {
            return fail(
                "command",
                "external pools are not started by paddock: give `socket` instead".into(),
            )
        }
        (PoolMode::External, None, None) => Vec::new(),
        (_, Some(command), None) if command.first().is_some_and(|p| !p.is_empty()) => {
            command.clone()
        }
        _ => {
            return fail(
                "command",
                "name the program to run, e.g. [\"php-cgi\"], or set builtin = \"cgi\"".into(),
            )
        }
    };
    if pool.builtin != Some(RawBuiltin::Php) {
        super::php::forbid_settings(name, pool)?;
    }
    if pool.builtin != Some(RawBuiltin::Wsgi) {
        super::wsgi::forbid_settings(name, pool)?;
    }
    let protocol = pool.protocol.unwrap_or_default();
    if protocol != WorkerProtocol::Fastcgi && pool.builtin.is_some() {
        return fail(
            "protocol",
            "paddock's builtin workers speak FastCGI only; leave `protocol` out".into(),
        );
    }
    let external_socket = match (mode, &pool.socket) {
        (PoolMode::External, Some(socket)) => Some(base.join(socket)),
        (PoolMode::External, None) => {
            return fail(
                "socket",
                "external pools need the server's Unix socket path".into(),
            )
        }
        (_, Some(_)) => {
            return fail(
                "socket",
                "only external pools take a socket; paddock creates its workers' sockets".into(),
            )
        }
        (_, None) => None,
    };
    if mode != PoolMode::External && pool.connections.is_some() {
        return fail(
            "connections",
            "only external pools take `connections`; use `threads` for threaded pools".into(),
        );
    }
    let keep_connections = match (mode, pool.keep_connections) {
        (PoolMode::External, _) if protocol == WorkerProtocol::Uwsgi => {
            if pool.keep_connections == Some(true) {
                return fail(
                    "keep_connections",
                    "the uwsgi protocol carries one request per connection".into(),
                );
            }
            false
        }
        // Off unless asked for: a server that serves a kept connection with one process or
        // thread until it closes (php-fpm, uWSGI over HTTP) and has fewer of them than
        // `connections` would leave requests waiting in its backlog behind idle ones.
        (PoolMode::External, keep) => keep.unwrap_or(false),
        (_, None) => true,
        (_, Some(_)) => {
            return fail(
                "keep_connections",
                "only external pools take `keep_connections`; paddock keeps a connection to \
                 each slot of its own workers"
                    .into(),
            )
        }
    };

    // Requests sent ahead wait in a busy worker's socket, so its server must take connections
    // beyond those it is serving: paddock's own PHP worker serves its connections in turn, and
    // a threaded pool's own server may (granian queues every connection's requests for its
    // threads; uWSGI over uwsgi or FastCGI accepts the next connection once a thread is free).
    // php-cgi serves one connection until it closes, so a request sent ahead on a second one
    // would wait for the first to close; an external server's processes are not paddock's.
    // paddock-wsgi's threads take the next request of any of the process's connections.
    let builtin_ahead = matches!(pool.builtin, Some(RawBuiltin::Php | RawBuiltin::Wsgi));
    let threaded_command = mode == PoolMode::Threaded && pool.builtin.is_none();
    if !builtin_ahead && !threaded_command && pool.send_ahead_below.is_some() {
        return fail(
            "send_ahead_below",
            "only builtin = \"php\" and \"wsgi\" pools and threaded pools running a `command` \
             take `send_ahead_below`"
                .into(),
        );
    }
    let send_ahead_below_us = pool
        .send_ahead_below
        .map_or(DEFAULT_SEND_AHEAD_BELOW_US, |d| d.0.as_micros() as u64);
    let send_ahead = match (builtin_ahead, threaded_command, pool.send_ahead) {
        (true, _, send_ahead) => send_ahead.unwrap_or(true),
        // Off unless asked for: only the worker's server knows whether it takes connections
        // beyond its threads (uWSGI over HTTP does not: each kept connection holds a thread).
        (false, true, send_ahead) => send_ahead.unwrap_or(false),
        (false, false, None) => false,
        (false, false, Some(_)) => {
            return fail(
                "send_ahead",
                "only builtin = \"php\" and \"wsgi\" pools and threaded pools running a `command` \
                 take `send_ahead`: php-cgi and builtin cgi workers serve one connection at a time, \
                 and an external server's processes are its own"
                    .into(),
            )
        }
    };

    let sizing = validate_sizing(name, pool, mode, slots_per_worker)?;
    let spawn_rate = pool.spawn_rate.unwrap_or(DEFAULT_SPAWN_RATE);
    if spawn_rate == 0 {
        return fail("spawn_rate", "must be at least 1".into());
    }
    let readiness = super::readiness::validate_readiness(name, pool, mode)?;
    let recycle = Recycle {
        max_requests: pool.max_requests.unwrap_or(0),
        jitter: pool.max_requests_jitter.unwrap_or(0),
        max_rss: pool.max_rss.map(|s| s.0),
        max_lifetime: pool.max_lifetime.map(|d| d.0),
    };
    if recycle.jitter > 0 && recycle.max_requests == 0 {
        return fail("max_requests_jitter", "needs max_requests to be set".into());
    }

    let working_directory = match &pool.working_directory {
        Some(dir) => Some(existing_dir(
            &["pools", name, "working_directory"],
            &base.join(dir),
        )?),
        None => None,
    };
    for key in pool.env.keys() {
        if key.is_empty() || key.contains(['=', '\0']) {
            return Err(invalid(
                &["pools", name, "env", key],
                "not a valid environment variable name",
            ));
        }
    }
    let user = match &pool.user {
        None => None,
        Some(user) => match nix::unistd::User::from_name(user) {
            Ok(Some(found)) => Some(found.uid.as_raw()),
            _ => return fail("user", format!("no user named {user:?} on this system")),
        },
    };
    let group = match &pool.group {
        None => None,
        Some(group) => match nix::unistd::Group::from_name(group) {
            Ok(Some(found)) => Some(found.gid.as_raw()),
            _ => return fail("group", format!("no group named {group:?} on this system")),
        },
    };
    if mode == PoolMode::External
        && (user.is_some()
            || group.is_some()
            || working_directory.is_some()
            || !pool.env.is_empty())
    {
        return Err(invalid(
            &["pools", name],
            "user, group, working_directory and env apply to workers paddock starts, not to external pools",
        ));
    }
    if mode == PoolMode::External && pool.scheduling.is_some() {
        return fail(
            "scheduling",
            "applies to workers paddock starts, not to an external server".into(),
        );
    }
    let scheduling = match pool.scheduling {
        None | Some(RawScheduling::Batch) => Scheduling::Batch,
        Some(RawScheduling::Normal) => Scheduling::Normal,
    };

    let cpu_affinity = match (pool.cpu_affinity, mode, pool.builtin) {
        (None | Some(RawCpuAffinity::None), ..) => CpuAffinity::None,
        (Some(RawCpuAffinity::Spread), PoolMode::External, _) => {
            return fail(
                "cpu_affinity",
                "applies to workers paddock starts, not to an external server".into(),
            )
        }
        (Some(RawCpuAffinity::Spread), _, Some(RawBuiltin::Php)) => return fail(
            "cpu_affinity",
            "\"spread\" is not available for builtin = \"php\" pools, whose workers are forked \
                 by their PHP parent rather than started by paddock"
                .into(),
        ),
        (Some(RawCpuAffinity::Spread), ..) => CpuAffinity::Spread,
    };

    let builtin_php_library = match pool.builtin {
        Some(RawBuiltin::Php) => Some(super::php::library(name)?),
        _ => None,
    };
    Ok(PoolConfig {
        name: name.to_string(),
        mode,
        env: worker_environment(
            // A builtin pool's program is php-cgi's executable, but its own main never runs.
            match &builtin_php_library {
                Some(_) => "",
                None => command.first().map_or("", String::as_str),
            },
            &pool.env,
            pool.env_allow.as_deref().unwrap_or(&[]),
            slots_per_worker,
        ),
        command,
        php_library: builtin_php_library,
        external_socket,
        protocol,
        keep_connections,
        send_ahead,
        send_ahead_below_us,
        slots_per_worker,
        sizing,
        spawn_rate,
        readiness,
        recycle,
        working_directory,
        user,
        group,
        rlimits: Rlimits {
            nofile: pool.rlimit_nofile,
            nproc: pool.rlimit_nproc,
            core: pool.rlimit_core.map(|s| s.0),
        },
        scheduling,
        cpu_affinity,
    })
}

fn validate_sizing(
    name: &str,
    pool: &RawPool,
    mode: PoolMode,
    slots: u32,
) -> Result<Sizing, Invalid> {
    let at = |key: &str, message: &str| invalid(&["pools", name, key], message);
    let sizing = pool.sizing.unwrap_or(RawSizing::Static);
    let forbid = |key: &str, present: bool, why: &str| -> Result<(), Invalid> {
        if present {
            Err(at(key, why))
        } else {
            Ok(())
        }
    };
    if mode == PoolMode::External {
        forbid(
            "sizing",
            pool.sizing.is_some(),
            "external pools are not sized by paddock",
        )?;
        forbid(
            "workers",
            pool.workers.is_some(),
            "external pools have no workers; use `connections`",
        )?;
        return Ok(Sizing::Static { workers: 0 });
    }
    let in_range = |key: &str, value: u32| -> Result<u32, Invalid> {
        if (1..=MAX_WORKERS).contains(&value) {
            Ok(value)
        } else {
            Err(at(key, &format!("must be between 1 and {MAX_WORKERS}")))
        }
    };
    match sizing {
        RawSizing::Static => {
            let why = "applies to sizing = \"dynamic\" or \"ondemand\"; static pools use `workers`";
            forbid("max_workers", pool.max_workers.is_some(), why)?;
            forbid("start_workers", pool.start_workers.is_some(), why)?;
            forbid("min_spare", pool.min_spare.is_some(), why)?;
            forbid("max_spare", pool.max_spare.is_some(), why)?;
            forbid("idle_timeout", pool.idle_timeout.is_some(), why)?;
            Ok(Sizing::Static {
                workers: in_range("workers", pool.workers.unwrap_or(DEFAULT_WORKERS))?,
            })
        }
        RawSizing::Dynamic => {
            forbid(
                "workers",
                pool.workers.is_some(),
                "dynamic pools use max_workers (and start_workers, min_spare, max_spare)",
            )?;
            forbid(
                "idle_timeout",
                pool.idle_timeout.is_some(),
                "dynamic pools retire idle workers above max_spare; idle_timeout is for ondemand",
            )?;
            let max = in_range(
                "max_workers",
                pool.max_workers.unwrap_or(DEFAULT_MAX_WORKERS),
            )?;
            let min_spare = pool.min_spare.unwrap_or(slots);
            let max_spare = pool.max_spare.unwrap_or(3 * slots).max(min_spare);
            if pool.max_spare.is_some_and(|m| m < min_spare) {
                return Err(at(
                    "max_spare",
                    &format!("must be at least min_spare ({min_spare})"),
                ));
            }
            if min_spare > max * slots {
                return Err(at(
                    "min_spare",
                    &format!("cannot exceed max_workers × slots ({})", max * slots),
                ));
            }
            let default_start = (min_spare + (max_spare - min_spare) / 2)
                .div_ceil(slots)
                .max(1);
            let start = pool.start_workers.unwrap_or(default_start.min(max));
            if start > max {
                return Err(at(
                    "start_workers",
                    &format!("cannot exceed max_workers ({max})"),
                ));
            }
            Ok(Sizing::Dynamic {
                start,
                min_spare,
                max_spare,
                max,
            })
        }
        RawSizing::Ondemand => {
            forbid(
                "workers",
                pool.workers.is_some(),
                "ondemand pools use max_workers",
            )?;
            let why = "applies to sizing = \"dynamic\"";
            forbid("start_workers", pool.start_workers.is_some(), why)?;
            forbid("min_spare", pool.min_spare.is_some(), why)?;
            forbid("max_spare", pool.max_spare.is_some(), why)?;
            Ok(Sizing::OnDemand {
                max: in_range(
                    "max_workers",
                    pool.max_workers.unwrap_or(DEFAULT_MAX_WORKERS),
                )?,
                idle_timeout: pool.idle_timeout.map_or(DEFAULT_IDLE_TIMEOUT, |d| d.0),
            })
        }
    }
}

/// Workers start from a cleared environment (as php-fpm's `clear_env`), plus PATH so that scripts
/// can run ordinary tools, plus the variables named in `env_allow` copied from paddock's own
/// environment, plus `PADDOCK_THREADS`, plus what the pool sets explicitly.
fn worker_environment(
    program: &str,
    explicit: &BTreeMap<String, String>,
    allow: &[String],
    slots: u32,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
    );
    for name in allow {
        if let Ok(value) = std::env::var(name) {
            env.insert(name.clone(), value);
        }
    }
    // How many requests the worker will be sent at once (1 for prefork, `threads` for threaded):
    // an application server sizes its thread pool from it instead of from a second setting that
    // could disagree with the pool's.
    env.insert("PADDOCK_THREADS".into(), slots.to_string());
    if Path::new(program)
        .file_name()
        .is_some_and(|f| f.to_string_lossy().starts_with("php-cgi"))
    {
        // paddock manages the processes: php-cgi must not fork children of its own, and must not
        // exit after 500 requests on its own (paddock recycles workers itself).
        env.insert("PHP_FCGI_CHILDREN".into(), "0".into());
        env.insert("PHP_FCGI_MAX_REQUESTS".into(), "0".into());
    }
    env.extend(explicit.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// What the front end needs to know about a pool to dispatch to it.
pub(super) fn dispatch_spec(name: &str, pool: &RawPool, config: &PoolConfig) -> PoolDispatchSpec {
    // A php-cgi told to exit after N requests must never be sent an (N+1)th: the front end retires
    // it after N itself, so its exit is recycling and no request ever meets the closing socket.
    let self_exit_after = config.exits_after_requests();
    PoolDispatchSpec {
        name: name.to_string(),
        queue_timeout_ms: pool
            .queue_timeout
            .map_or(DEFAULT_QUEUE_TIMEOUT, |d| d.0)
            .as_millis() as u64,
        queue_max: pool.queue_max.unwrap_or(DEFAULT_QUEUE_MAX),
        request_timeout_ms: (pool
            .request_timeout
            .map_or(DEFAULT_REQUEST_TIMEOUT, |d| d.0)
            // A builtin PHP worker ends an overrunning request itself, the PHP way; the front
            // end's own deadline (504 and a kill) is the backstop.
            + if config.builtin_php() {
                super::php::TIMEOUT_GRACE
            } else {
                Duration::ZERO
            })
        .as_millis() as u64,
        max_requests: match (config.recycle.max_requests, self_exit_after) {
            (0, None) => 0,
            (0, Some(n)) => n,
            (m, None) => m,
            (m, Some(n)) => m.min(n),
        },
        max_requests_jitter: if self_exit_after.is_some() {
            0
        } else {
            config.recycle.jitter
        },
        external: config.mode == PoolMode::External,
        starts_empty: matches!(config.sizing, Sizing::OnDemand { .. }),
        grows_on_demand: !matches!(config.sizing, Sizing::Static { .. })
            && config.mode != PoolMode::External,
        protocol: config.protocol,
        keep_connections: config.keep_connections,
        send_ahead: config.send_ahead,
        send_ahead_below_us: config.send_ahead_below_us,
    }
}

impl PoolConfig {
    /// `N` when the pool's handler exits by itself after N requests (php-cgi with
    /// `PHP_FCGI_MAX_REQUESTS`): such an exit is recycling, whether paddock's own retirement or
    /// the handler gets there first.
    pub(crate) fn exits_after_requests(&self) -> Option<u64> {
        self.env
            .get("PHP_FCGI_MAX_REQUESTS")
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&n| n > 0 && self.command.first().is_some_and(|p| p.contains("php-cgi")))
    }
}
