//! Dropping root: once the front end holds its listeners and certificates, it switches to the
//! configured unprivileged user for good.
//!
//! `setuid` from root to another user clears every capability (no SECBIT_KEEP_CAPS is set), and
//! `no_new_privs` makes sure no later exec can gain any back (set-user-id binaries included).

use protocol::control::RunAs;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PrivilegesError {
    #[error("cannot switch to user {user} ({uid}:{gid}): {step} failed: {source}")]
    Switch {
        user: String,
        uid: u32,
        gid: u32,
        step: &'static str,
        source: nix::Error,
    },
}

/// Becomes `run_as` if running as root; does nothing otherwise (already unprivileged).
pub(crate) fn drop_to(run_as: &RunAs) -> Result<(), PrivilegesError> {
    use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let fail = |step: &'static str| {
        move |source| PrivilegesError::Switch {
            user: run_as.user.clone(),
            uid: run_as.uid,
            gid: run_as.gid,
            step,
            source,
        }
    };
    let gid = Gid::from_raw(run_as.gid);
    setgroups(&[gid]).map_err(fail("setgroups"))?;
    setgid(gid).map_err(fail("setgid"))?;
    setuid(Uid::from_raw(run_as.uid)).map_err(fail("setuid"))?;
    nix::sys::prctl::set_no_new_privs().map_err(fail("no_new_privs"))?;
    tracing::info!(user = %run_as.user, uid = run_as.uid, gid = run_as.gid, "front end dropped root privileges");
    Ok(())
}
