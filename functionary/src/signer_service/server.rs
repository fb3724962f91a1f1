//! The signer's Unix socket: binding it safely, checking who connects, serving requests one at a time.
//!
//! Each connection gets a thread that reads requests; every request is answered under one lock around the
//! [`BlockSignerService`], so requests from all connections are handled strictly one after another (the guard is
//! the serialisation point). A malformed frame gets a [`SignerResponse::ProtocolError`] (and the connection is
//! closed if the stream is out of step); it never stops the signer.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hsm::DigestSigner;

use super::protocol::{read_frame, write_frame, FrameError, SignerRequest, SignerResponse};
use super::service::{BlockSignerService, Requester};

/// Most connections served at once (the daemon needs one; a few more for admin tools and tests).
pub const MAX_CONNECTIONS: usize = 8;
/// How often the accept loop looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(200);
/// Once a client has sent the first byte of a frame, the rest must follow within this time.
const FRAME_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Another process answers on the socket: a signer is already running there.
    #[error("signer.socket: another process is already serving {} (is a signer already running?)", path.display())]
    AlreadyServing {
        /// The socket path.
        path: PathBuf,
    },
    /// The path exists and is not a socket: never removed.
    #[error("signer.socket: {} exists and is not a socket; refusing to replace it", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Creating, binding or setting the mode failed.
    #[error("signer.socket: {}: {what}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The step that failed.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

/// Checks that nothing serves `path`: removes a stale socket file left by a signer that died, refuses when a
/// process answers or when the path is not a socket. Call before opening the token (so a second signer never
/// touches it).
pub fn check_socket_free(path: &Path) -> Result<(), SocketError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(SocketError::Io {
                path: path.to_path_buf(),
                what: "inspecting",
                source,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(SocketError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(SocketError::AlreadyServing {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(target: "signer", socket = %path.display(), "removing a stale socket (nobody answers)");
            std::fs::remove_file(path).map_err(|source| SocketError::Io {
                path: path.to_path_buf(),
                what: "removing the stale socket",
                source,
            })
        }
        Err(source) => Err(SocketError::Io {
            path: path.to_path_buf(),
            what: "probing for a running signer",
            source,
        }),
    }
}

/// Binds the socket at `path` (after [`check_socket_free`]) with mode 0600, or 0660 when another uid is allowed
/// (the daemon's user must then be in the signer's group; the uid check still applies).
pub fn bind_socket(path: &Path, allowed_uid: Option<u32>) -> Result<UnixListener, SocketError> {
    check_socket_free(path)?;
    let io_err = |what: &'static str| {
        move |source| SocketError::Io {
            path: path.to_path_buf(),
            what,
            source,
        }
    };
    let listener = UnixListener::bind(path).map_err(io_err("binding"))?;
    let own_uid = current_uid();
    let mode = match allowed_uid {
        Some(uid) if uid != own_uid => 0o660,
        _ => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err("setting the mode"))?;
    Ok(listener)
}

/// This process's effective uid.
pub fn current_uid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The uid of the process at the other end of a connected Unix socket (`SO_PEERCRED`).
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a properly aligned ucred that outlives the call.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// Whether a peer with `peer_uid` may talk to a signer running as `own_uid` that also allows `allowed_uid`.
pub fn peer_allowed(peer_uid: u32, own_uid: u32, allowed_uid: Option<u32>) -> bool {
    peer_uid == own_uid || allowed_uid == Some(peer_uid)
}

/// A bound signer socket, ready to serve.
pub struct SignerServer {
    listener: UnixListener,
    path: PathBuf,
    own_uid: u32,
    allowed_uid: Option<u32>,
}

impl SignerServer {
    /// Binds `path` (see [`bind_socket`]).
    pub fn bind(path: &Path, allowed_uid: Option<u32>) -> Result<Self, SocketError> {
        let listener = bind_socket(path, allowed_uid)?;
        Ok(SignerServer {
            listener,
            path: path.to_path_buf(),
            own_uid: current_uid(),
            allowed_uid,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves until `stop` is set (checked every 200 ms), then waits for the request in progress, removes the
    /// socket file and returns. Returns an error only if the listening socket itself fails.
    pub fn serve<S: DigestSigner + 'static>(
        self,
        service: BlockSignerService<S>,
        stop: &AtomicBool,
    ) -> io::Result<()> {
        let service = Arc::new(Mutex::new(service));
        let active = Arc::new(AtomicUsize::new(0));
        self.listener.set_nonblocking(true)?;
        tracing::info!(target: "signer", socket = %self.path.display(), own_uid = self.own_uid,
            allowed_uid = ?self.allowed_uid, "signer listening");
        let result = loop {
            if stop.load(Ordering::SeqCst) {
                break Ok(());
            }
            if let Err(e) = wait_readable(&self.listener, STOP_POLL) {
                break Err(e);
            }
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::Interrupted =>
                {
                    continue
                }
                Err(e) => {
                    // Per-connection failures (ECONNABORTED, EMFILE) must not stop the signer.
                    tracing::warn!(target: "signer", error = %e, "accept failed");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            self.admit(stream, &service, &active);
        };
        // Let the request in progress (if any) finish before the process goes away.
        drop(service.lock());
        let _ = std::fs::remove_file(&self.path);
        tracing::info!(target: "signer", socket = %self.path.display(), "signer stopped listening");
        result
    }

    fn admit<S: DigestSigner + 'static>(
        &self,
        mut stream: UnixStream,
        service: &Arc<Mutex<BlockSignerService<S>>>,
        active: &Arc<AtomicUsize>,
    ) {
        if let Err(e) = stream.set_nonblocking(false) {
            tracing::warn!(target: "signer", error = %e, "cannot make a connection blocking; closed");
            return;
        }
        let uid = match peer_uid(&stream) {
            Ok(uid) => uid,
            Err(e) => {
                tracing::warn!(target: "signer", error = %e, "cannot read the peer's credentials; closed");
                return;
            }
        };
        if !peer_allowed(uid, self.own_uid, self.allowed_uid) {
            tracing::warn!(target: "signer", peer_uid = uid, own_uid = self.own_uid, allowed_uid = ?self.allowed_uid,
                "connection from a uid that may not use the signer; closed");
            let _ = write_frame(
                &mut stream,
                &SignerResponse::ProtocolError(format!(
                    "uid {uid} may not use this signer (set signer.allowed_uid)"
                )),
            );
            return;
        }
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(target: "signer", peer_uid = uid, max = MAX_CONNECTIONS, "too many connections; closed");
            let _ = write_frame(
                &mut stream,
                &SignerResponse::ProtocolError(format!(
                    "too many connections (at most {MAX_CONNECTIONS})"
                )),
            );
            return;
        }
        // CreateJournal is accepted only from the signer's own uid, never from `signer.allowed_uid`.
        let requester = if uid == self.own_uid {
            Requester::OwnUid
        } else {
            Requester::AllowedUid
        };
        let service = service.clone();
        let active_in_thread = active.clone();
        let spawned = std::thread::Builder::new()
            .name("signer-conn".into())
            .spawn(move || {
                tracing::debug!(target: "signer", peer_uid = uid, "client connected");
                serve_connection(stream, &service, requester);
                active_in_thread.fetch_sub(1, Ordering::SeqCst);
                tracing::debug!(target: "signer", peer_uid = uid, "client disconnected");
            });
        if let Err(e) = spawned {
            active.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(target: "signer", error = %e, "cannot start a connection thread; closed");
        }
    }
}

/// Reads requests until the client closes or the stream is out of step; answers each under the service lock.
fn serve_connection<S: DigestSigner>(
    mut stream: UnixStream,
    service: &Mutex<BlockSignerService<S>>,
    requester: Requester,
) {
    loop {
        // Idle connections may wait for their next request as long as they like; a started frame may not.
        match wait_for_request(&stream) {
            Ok(()) => {}
            Err(e) => {
                tracing::debug!(target: "signer", error = %e, "connection failed");
                return;
            }
        }
        if stream.set_read_timeout(Some(FRAME_READ_TIMEOUT)).is_err() {
            return;
        }
        let request = read_frame::<SignerRequest>(&mut stream);
        let response = match request {
            Ok(None) => return,
            Ok(Some(request)) => {
                let Ok(mut service) = service.lock() else {
                    let _ = write_frame(
                        &mut stream,
                        &SignerResponse::Refused("the signer failed internally; restart it".into()),
                    );
                    return;
                };
                service.handle(request, requester)
            }
            Err(FrameError::Decode(reason)) => {
                tracing::warn!(target: "signer", %reason, "undecodable request");
                SignerResponse::ProtocolError(format!("undecodable request: {reason}"))
            }
            Err(e @ FrameError::TooLarge { .. }) => {
                tracing::warn!(target: "signer", error = %e, "oversized request; closing the connection");
                let _ = write_frame(&mut stream, &SignerResponse::ProtocolError(e.to_string()));
                return;
            }
            Err(e) => {
                tracing::debug!(target: "signer", error = %e, "connection closed mid-frame");
                return;
            }
        };
        if let Err(e) = write_frame(&mut stream, &response) {
            tracing::debug!(target: "signer", error = %e, "cannot answer; connection closed");
            return;
        }
    }
}

/// Blocks until the connection has data or was closed by the peer, without a timeout.
fn wait_for_request(stream: &UnixStream) -> io::Result<()> {
    poll_readable(stream.as_raw_fd(), -1)
}

/// Waits until the listener has a pending connection or `timeout` passes.
fn wait_readable(listener: &UnixListener, timeout: Duration) -> io::Result<()> {
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    poll_readable(listener.as_raw_fd(), ms)
}

/// poll(2) for POLLIN (or hang-up) on one descriptor; `ms` < 0 waits forever (retrying when interrupted), a
/// timed wait returns Ok when interrupted or timed out.
fn poll_readable(fd: std::os::fd::RawFd, ms: libc::c_int) -> io::Result<()> {
    loop {
        let mut fds = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, count 1.
        let rc = unsafe { libc::poll(&mut fds, 1, ms) };
        if rc >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
        if ms >= 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_own_uid_or_the_allowed_uid_may_connect() {
        assert!(peer_allowed(1000, 1000, None));
        assert!(!peer_allowed(1001, 1000, None));
        assert!(peer_allowed(1001, 1000, Some(1001)));
        assert!(!peer_allowed(1002, 1000, Some(1001)));
        assert!(
            !peer_allowed(0, 1000, Some(1001)),
            "root is not implicitly allowed"
        );
    }

    #[test]
    fn a_live_socket_is_never_replaced_a_stale_one_is_and_a_file_never() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let live = UnixListener::bind(&path).unwrap();
        assert!(matches!(
            check_socket_free(&path),
            Err(SocketError::AlreadyServing { .. })
        ));
        drop(live);
        // The file is still there, nobody answers: stale.
        assert!(path.exists());
        check_socket_free(&path).unwrap();
        assert!(!path.exists());
        std::fs::write(&path, b"not a socket").unwrap();
        assert!(matches!(
            check_socket_free(&path),
            Err(SocketError::NotASocket { .. })
        ));
        assert!(path.exists());
    }

    #[test]
    fn socket_mode_is_0600_unless_another_uid_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sock");
        let _l = bind_socket(&path, None).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let path = dir.path().join("b.sock");
        let _l = bind_socket(&path, Some(current_uid().wrapping_add(1))).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
    }

    #[test]
    fn peer_uid_of_a_socketpair_is_ours() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a).unwrap(), current_uid());
    }
}
