//! The sockets the master owns: public listeners, the private runtime directory, worker sockets.

use std::fs::{self, DirBuilder};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::sys::socket::{listen, Backlog};

/// Pending connections the kernel queues per listener before paddock accepts them. The front end
/// accepts quickly, so this only matters for bursts; the kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 4096;

/// Binds a public TCP listener (done by the master so it can run as root for ports below 1024).
pub(crate) fn bind_tcp(address: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(address)?;
    listen(
        &listener,
        Backlog::new(LISTEN_BACKLOG).unwrap_or(Backlog::MAXCONN),
    )?;
    Ok(listener)
}

/// The directory that holds the worker sockets: only paddock's user may enter it, so no other local
/// user can talk FastCGI to a worker (which would let them run any script as the pool's user).
#[derive(Debug)]
pub(crate) struct RuntimeDir {
    path: PathBuf,
    /// Remove the directory on drop: true when paddock created it.
    owned: bool,
    /// The unprivileged user the front end runs as, who must reach the worker sockets.
    owner: Option<(u32, u32)>,
}

impl RuntimeDir {
    /// Uses `configured` (created if missing) or a fresh private directory under the temp dir,
    /// owned by `owner` (uid, gid) when given, so that an unprivileged front end can enter it.
    pub(crate) fn create(configured: Option<&Path>, owner: Option<(u32, u32)>) -> io::Result<Self> {
        let mut dir = Self::create_dir(configured)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir.path, Some(uid), Some(gid))?;
        }
        dir.owner = owner;
        Ok(dir)
    }

    fn create_dir(configured: Option<&Path>) -> io::Result<Self> {
        match configured {
            Some(path) => {
                let existed = path.exists();
                DirBuilder::new().recursive(true).mode(0o700).create(path)?;
                fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
                Ok(Self {
                    path: path.to_path_buf(),
                    owned: !existed,
                    owner: None,
                })
            }
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("paddock-")
                    .permissions(fs::Permissions::from_mode(0o700))
                    .tempdir()?;
                Ok(Self {
                    path: dir.keep(),
                    owned: true,
                    owner: None,
                })
            }
        }
    }

    /// Leave the directory in place on drop (a successor uses it).
    pub(crate) fn keep(&mut self) {
        self.owned = false;
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Binds a fresh listening socket for one worker. The name carries the worker id, which is
    /// never reused, so a socket left by a dead worker never collides with a new one.
    pub(crate) fn bind_worker_socket(
        &self,
        pool: &str,
        worker: u64,
    ) -> io::Result<(UnixListener, PathBuf)> {
        // The master's pid keeps two masters (during a binary upgrade) from ever colliding.
        let path = self
            .path
            .join(format!("{pool}.{}.{worker}.sock", std::process::id()));
        let _ = fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
        }
        Ok((listener, path))
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        if self.owned {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
