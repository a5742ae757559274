//! The front end's end of the control channel to the master.

use std::io;
use std::sync::Arc;

use protocol::control::{decode_frame, encode_frame, ToFrontend, ToMaster};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};
use tracing::{error, info};

use crate::state::State;

/// Reads framed messages from the master.
#[derive(Debug)]
pub(crate) struct Inbox {
    reader: OwnedReadHalf,
    buffer: Vec<u8>,
}

impl Inbox {
    pub(crate) fn new(reader: OwnedReadHalf) -> Self {
        Self {
            reader,
            buffer: Vec::new(),
        }
    }

    /// The next message; `Ok(None)` when the master closed the channel.
    pub(crate) async fn next(&mut self) -> io::Result<Option<ToFrontend>> {
        loop {
            if let Some((message, used)) = decode_frame::<ToFrontend>(&self.buffer)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                self.buffer.drain(..used);
                return Ok(Some(message));
            }
            if self.reader.read_buf(&mut self.buffer).await? == 0 {
                return Ok(None);
            }
        }
    }
}

/// Writes every message queued on `outbox` to the master.
pub(crate) async fn run_outbox(
    mut writer: OwnedWriteHalf,
    mut outbox: mpsc::UnboundedReceiver<ToMaster>,
) {
    let mut frame = Vec::new();
    while let Some(message) = outbox.recv().await {
        frame.clear();
        if encode_frame(&message, &mut frame).is_err() || writer.write_all(&frame).await.is_err() {
            return;
        }
    }
}

/// Applies worker events until the master asks for a stop (or disappears, which is a fast stop).
pub(crate) async fn run_inbox(
    mut inbox: Inbox,
    state: Arc<State>,
    stop: watch::Sender<Option<std::time::Duration>>,
) {
    loop {
        match inbox.next().await {
            Ok(Some(ToFrontend::Shutdown { deadline_ms })) => {
                info!(
                    deadline_ms,
                    "stopping: no new connections, finishing in-flight requests"
                );
                state.begin_stopping();
                let _ = stop.send(Some(std::time::Duration::from_millis(deadline_ms)));
            }
            Ok(Some(message)) => state.apply(&message),
            Ok(None) => {
                error!("the master closed the control channel; stopping now");
                let _ = stop.send(Some(std::time::Duration::ZERO));
                return;
            }
            Err(e) => {
                error!(error = %e, "control channel failed; stopping now");
                let _ = stop.send(Some(std::time::Duration::ZERO));
                return;
            }
        }
    }
}
