//! The MLLP transport for IHE PCD, beside `http`: a TCP listener that reads frames (`pcd::Deframer`, bounded) and
//! answers each with the ACK `services::pcd::handle` gives. It holds under hostile peers: at most
//! `pcd_connections_max` connections are served at once (more wait in the kernel's queue), a connection that sends
//! nothing for `pcd_idle_timeout`, or takes longer than that for one frame, is closed, and a frame over
//! `pcd_frame_max` or bytes that are not MLLP close the connection. It knows neither SQL nor the record.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::services::AppState;

/// Accept and serve connections until `shutdown` turns true.
pub async fn serve(listener: TcpListener, state: AppState, mut shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(state.config.pcd_connections_max.max(1)));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.wait_for(|v| *v) => return,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.wait_for(|v| *v) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let (state, shutdown) = (state.clone(), shutdown.clone());
                tokio::spawn(async move {
                    connection(stream, peer, state, shutdown).await;
                    drop(permit);
                });
            }
            Err(e) => {
                eprintln!("infusafe server: MLLP accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// One connection: frames in, ACKs out, in order.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    state: AppState,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let idle = state.config.pcd_idle_timeout;
    let mut deframer = pcd::Deframer::new(state.config.pcd_frame_max);
    let mut buf = vec![0u8; 16 * 1024];
    let mut frame_started: Option<tokio::time::Instant> = None;
    loop {
        // A frame must be whole within `idle` of its first byte; between frames, `idle` of silence ends it.
        let deadline = match frame_started {
            Some(start) => start + idle,
            None => tokio::time::Instant::now() + idle,
        };
        let read = tokio::select! {
            r = tokio::time::timeout_at(deadline, stream.read(&mut buf)) => r,
            _ = shutdown.wait_for(|v| *v) => return,
        };
        let n = match read {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
            Err(_) => {
                if deframer.is_mid_frame() {
                    eprintln!(
                        "infusafe server: MLLP {peer}: a frame took longer than {idle:?}; closed"
                    );
                }
                return;
            }
        };
        let frames = match deframer.push(&buf[..n]) {
            Ok(frames) => frames,
            Err(e) => {
                eprintln!("infusafe server: MLLP {peer}: {e}; closed");
                return;
            }
        };
        // A partial frame's clock starts at its first byte (or now, when a frame ended in this read and the
        // next began).
        frame_started = if !deframer.is_mid_frame() {
            None
        } else if frame_started.is_none() || !frames.is_empty() {
            Some(tokio::time::Instant::now())
        } else {
            frame_started
        };
        for frame in frames {
            let ack = crate::services::pcd::handle(&state, &frame).await;
            if stream.write_all(&pcd::frame(ack.as_bytes())).await.is_err() {
                return;
            }
        }
    }
}
