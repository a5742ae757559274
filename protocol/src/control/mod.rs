//! Messages between the master (pool manager) and the front end.
//!
//! The two processes share one Unix socketpair. Each message is a 4-byte big-endian length followed
//! by that many bytes of JSON. JSON keeps the channel debuggable with `strace`; the traffic is small
//! (worker up/down events, coalesced counters), never one round trip per request.
//!
//! The framing is sans-IO like the rest of this crate: [`encode_frame`] appends a frame to a buffer
//! and [`decode_frame`] takes one from the front of a buffer or reports that more bytes are needed.
//!
//! # Layout
//! - `messages` — what each side says: [`ToFrontend`], [`ToMaster`] and the values they carry.
//! - `spec` — the configuration schema the master sends in [`ToFrontend::Configure`]:
//!   [`FrontendSpec`], [`SiteSpec`], [`ListenerSpec`], [`PoolDispatchSpec`], ….
//! - `framing` — the length-prefixed JSON frames, [`encode_frame`] and [`decode_frame`].
//!
//! Everything is re-exported here, so `protocol::control::X` is the path to use.

mod framing;
mod messages;
mod spec;

pub use self::framing::{decode_frame, encode_frame, FrameError, MAX_FRAME_LEN};
pub use self::messages::{ExitReason, KillReason, PoolLoad, ToFrontend, ToMaster, WorkerId};
pub use self::spec::{
    AccessLogFormat, AccessLogSpec, AcmeChallenge, AcmeSpec, CacheRule, FrontendSpec, Http2Spec,
    IpNetwork, LimitsSpec, ListenerKind, ListenerSpec, MountSpec, PoolDispatchSpec, RedirectRule,
    RunAs, ScriptRouteSpec, SendfileSpec, SiteAcmeSpec, SiteSpec, SymlinkPolicy, TimeoutsSpec,
    TlsFiles, WorkerProtocol,
};

/// The descriptor number at which the front end inherits its end of the control channel.
pub const CONTROL_FD: i32 = 3;
/// The front end inherits its listeners at `FIRST_LISTENER_FD..`, in the order of
/// [`FrontendSpec::listeners`].
pub const FIRST_LISTENER_FD: i32 = 4;
