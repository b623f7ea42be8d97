//! Local control sockets: management commands while the appliance runs.
//!
//! sled is single-process, so while the mailbox role runs, `campusmail user
//! add` and friends cannot open the directory themselves; they send the
//! command to the role instead (as mox's `ctl` does). Likewise queue
//! commands go to the running engine, which alone may change its queue.
//! When nothing listens, the CLI works on the files directly.
//!
//! Owns: the socket files (`control.sock` of the mailbox role,
//! `engine.sock` of the engine role) in the data folder.
//! Protocol: one JSON command per line in, one JSON `ControlReply` per line
//! out; each socket has its own command type.
//!
//! Invariants:
//! - The socket is owner-only (0600) inside the owner-only data folder: only
//!   the appliance's own user (or root) can manage it.
//! - A stale socket file from a crashed run is replaced; a live one (another
//!   instance running) makes the start fail rather than steal it.
//!
//! Reads untrusted input: only from the appliance's own user.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Longest request line accepted. Most commands are tiny; `user import`
/// carries the whole file's rows (at most `directory::import::MAX_IMPORT_BYTES`
/// of CSV; JSON escaping makes a control byte six).
const MAX_REQUEST_BYTES: u64 = 6 * crate::directory::import::MAX_IMPORT_BYTES + 64 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlReply {
    pub ok: bool,
    pub output: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("another campusmail is already running with this data folder (its control socket {0} answers)")]
    AlreadyRunning(PathBuf),
    #[error("cannot listen on the control socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the running campusmail did not answer on {path}: {source}")]
    Talk {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs one command; `Err` holds the message for the admin.
pub type Handler<C> = Arc<dyn Fn(C) -> Result<String, String> + Send + Sync>;

/// Listens on `path` and runs each command with `handler`, on its own thread.
pub fn serve<C: DeserializeOwned + 'static>(
    path: &Path,
    handler: Handler<C>,
) -> Result<(), ControlError> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(ControlError::AlreadyRunning(path.to_path_buf()));
        }
        let _ = std::fs::remove_file(path);
    }
    let bind_err = |source| ControlError::Bind {
        path: path.to_path_buf(),
        source,
    };
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let handler = handler.clone();
                let _ = std::thread::Builder::new()
                    .name("control-conn".into())
                    .spawn(move || handle(stream, &handler));
            }
        })
        .map_err(bind_err)?;
    Ok(())
}

fn handle<C: DeserializeOwned>(stream: UnixStream, handler: &Handler<C>) {
    let mut line = String::new();
    let reader = match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    };
    let mut reader = BufReader::new(std::io::Read::take(reader, MAX_REQUEST_BYTES));
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let reply = match serde_json::from_str::<C>(&line) {
        Ok(command) => match handler(command) {
            Ok(output) => ControlReply { ok: true, output },
            Err(output) => ControlReply { ok: false, output },
        },
        Err(e) => ControlReply {
            ok: false,
            output: format!("malformed control request: {e}"),
        },
    };
    if let Ok(mut json) = serde_json::to_string(&reply) {
        json.push('\n');
        let mut stream = stream;
        let _ = stream.write_all(json.as_bytes());
    }
}

/// Sends `command` to a running appliance. `Ok(None)` when none is running.
pub fn send<C: Serialize>(path: &Path, command: &C) -> Result<Option<ControlReply>, ControlError> {
    send_within(path, command, None)
}

/// `send`, giving up when the role takes longer than `timeout` for a
/// write or a read (for web pages, which must not hang on a stuck role).
pub fn send_within<C: Serialize>(
    path: &Path,
    command: &C,
    timeout: Option<std::time::Duration>,
) -> Result<Option<ControlReply>, ControlError> {
    let mut stream = match UnixStream::connect(path) {
        Ok(s) => s,
        Err(_) => return Ok(None),
    };
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    let talk = |source| ControlError::Talk {
        path: path.to_path_buf(),
        source,
    };
    let mut request = serde_json::to_string(command).map_err(|e| talk(e.into()))?;
    request.push('\n');
    stream.write_all(request.as_bytes()).map_err(talk)?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).map_err(talk)?;
    serde_json::from_str(&line)
        .map(Some)
        .map_err(|e| talk(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::commands::{execute, DirectoryCommand};
    use crate::directory::Directory;

    fn directory_handler(directory: Arc<Directory>) -> Handler<DirectoryCommand> {
        Arc::new(move |c| execute(&directory, &c).map_err(|e| e.to_string()))
    }

    #[test]
    fn commands_round_trip_through_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let directory =
            Arc::new(Directory::open(&dir.path().join("db"), &dir.path().join("s.json")).unwrap());
        let sock = dir.path().join("control.sock");
        serve(&sock, directory_handler(directory.clone())).unwrap();
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let reply = send(
            &sock,
            &DirectoryCommand::DomainAdd {
                domain: "campus.test".into(),
            },
        )
        .unwrap()
        .unwrap();
        assert!(reply.ok, "{}", reply.output);
        let reply = send(
            &sock,
            &DirectoryCommand::DomainAdd {
                domain: "campus.test".into(),
            },
        )
        .unwrap()
        .unwrap();
        assert!(!reply.ok);
        assert!(reply.output.contains("already exists"));
        assert!(matches!(
            serve(&sock, directory_handler(directory)),
            Err(ControlError::AlreadyRunning(_))
        ));
        assert!(
            send(&dir.path().join("none.sock"), &DirectoryCommand::UserList)
                .unwrap()
                .is_none()
        );
    }
}
