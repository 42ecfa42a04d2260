//! `GET /api/v1/watch`: newline-delimited JSON events for every change after a revision.
//!
//! The live subscription is taken before the history is read, so no change can fall
//! between the two; events already sent from history are skipped by revision. A watcher
//! too slow for the live channel is cut off (it lists again and resumes, as with a 410).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use bulkhead_api::rest::{Role, WatchEvent};
use bulkhead_store::{Event, ObjectKey};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::rest::auth::Caller;
use crate::rest::kinds;
use crate::state::Shared;

/// Query parameters of the watch.
#[derive(Debug, Default, Deserialize)]
pub struct WatchQuery {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Changes after this revision (default: from now).
    pub revision: Option<u64>,
}

/// `GET /api/v1/watch`.
pub async fn watch(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Query(query): Query<WatchQuery>,
) -> Result<Response, ApiError> {
    caller.require(&shared, Role::Viewer, "watch")?;
    let kind = query.kind.as_deref().map(kinds::canonical).transpose()?;
    let mut live = shared.subscribe_events();
    let history = match query.revision {
        Some(revision) => shared.store.events_since(revision)?,
        None => Vec::new(),
    };
    let mut last = history
        .last()
        .map(|e| e.revision)
        .or(query.revision)
        .unwrap_or(shared.store.revision()?);
    let namespace = query.namespace;
    let wanted = move |e: &Event| -> bool {
        let Ok(key) = ObjectKey::of_object(&e.object) else {
            return false;
        };
        kind.is_none_or(|k| key.kind == k)
            && namespace
                .as_deref()
                .is_none_or(|n| key.namespace.as_deref() == Some(n))
    };
    let stream = async_stream(move |tx| async move {
        for event in history.iter().filter(|e| wanted(e)) {
            if tx.send(line(event)).await.is_err() {
                return;
            }
        }
        loop {
            let received = tokio::select! {
                received = live.recv() => received,
                () = tx.closed() => return,
            };
            match received {
                Ok(event) if event.revision > last => {
                    last = event.revision;
                    if wanted(&event) && tx.send(line(&event)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
            }
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

fn line(event: &Event) -> Result<Bytes, std::io::Error> {
    let wire = WatchEvent {
        event_type: event.event_type,
        revision: event.revision,
        object: event.object.clone(),
    };
    let mut text = serde_json::to_vec(&wire).map_err(std::io::Error::other)?;
    text.push(b'\n');
    Ok(Bytes::from(text))
}

/// A stream fed by a spawned task through a small channel (ends when the task ends or the
/// client goes away).
fn async_stream<F, Fut>(
    producer: F,
) -> tokio_stream::wrappers::ReceiverStream<Result<Bytes, std::io::Error>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(producer(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
