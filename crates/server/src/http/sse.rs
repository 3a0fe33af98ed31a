//! Live streams as server-sent events: the hub's messages for one patient or one clinic, after the messages that
//! make a fresh screen correct at once.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use crate::services::hub::{Filter, Hub, LiveMessage};

/// An SSE response for `filter`, starting with `initial` events (the current snapshot), that ends when the server
/// shuts down or when `session_end` resolves (the person signed out or the session expired).
pub fn stream<E>(
    hub: &Hub,
    filter: Filter,
    initial: Vec<LiveMessage>,
    session_end: E,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<E>>
where
    E: std::future::Future<Output = ()> + Send + 'static,
{
    let receiver = hub.subscribe(&filter);
    let first = futures_util::stream::iter(initial.into_iter().map(|m| Ok(to_event(&m))));
    let live = BroadcastStream::new(receiver).filter_map(move |item| {
        let filter = filter.clone();
        async move {
            match item {
                Ok(m) if filter.accepts(&m) => Some(Ok(to_event(&m))),
                Ok(_) => None,
                Err(_lagged) => Some(Ok(Event::default()
                    .event("lagged")
                    .data("{\"reload\":true}"))),
            }
        }
    });
    let mut closing = hub.closing();
    let live = live.take_until(async move {
        tokio::select! {
            _ = closing.wait_for(|v| *v) => {}
            _ = session_end => {}
        }
    });
    Sse::new(first.chain(live)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn to_event(m: &LiveMessage) -> Event {
    Event::default()
        .event(m.kind.name())
        .data(serde_json::to_string(m).unwrap_or_else(|_| "{}".into()))
}
