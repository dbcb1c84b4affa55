//! Subscriptions over WebSocket. The legacy `graphql-ws` protocol
//! (subscriptions-transport-ws) goes to async-graphql as it is. For
//! `graphql-transport-ws`, a guard reads every client message first and
//! closes the socket with the protocol's own codes, which async-graphql does
//! not all use: 4400 for a message that is not one of the protocol's, 4401
//! for a subscribe before the connection is acknowledged, 4409 for a second
//! subscription under an id in use, 4429 for a second connection_init, and
//! 4408 when no connection_init arrives in time.

use std::collections::HashSet;
use std::time::Duration;

use async_graphql::http::{WebSocket as Protocol, WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::http::{HeaderMap, header};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;

use super::AppState;
use crate::domain::Caller;
use crate::graphql::caller_data;

/// How long a client may take to send connection_init, unless configured otherwise.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The protocol a client asks for in `Sec-WebSocket-Protocol`, the first one we speak.
pub fn protocol(headers: &HeaderMap) -> Option<WebSocketProtocols> {
    let offered = headers.get(header::SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    offered.split(',').find_map(|p| p.trim().parse().ok())
}

/// Serves one WebSocket connection until either side closes it.
/// `from_header` is the caller named by the upgrade request's own Authorization header, if any;
/// a token in the connection_init payload wins over it.
pub async fn serve(socket: WebSocket, state: AppState, protocol: WebSocketProtocols, from_header: Option<Caller>) {
    let (mut sink, mut incoming) = socket.split();
    // Messages that passed the guard go to async-graphql through this channel.
    let (forward, accepted) = mpsc::unbounded_channel::<Vec<u8>>();
    let accepted = tokio_stream::wrappers::UnboundedReceiverStream::new(accepted);
    let mut outgoing = Box::pin(Protocol::new(state.schema.clone(), accepted, protocol).on_connection_init({
        let state = state.clone();
        move |payload| async move {
            let caller = super::auth::session_caller(&state.auth, from_header, &payload).await?;
            Ok(caller_data(&state.store, caller))
        }
    }));
    // The legacy protocol has no close codes of its own to check for.
    let guarded = protocol == WebSocketProtocols::GraphQLWS;
    let mut guard = Guard::default();
    let init_deadline = tokio::time::sleep(state.ws_init_timeout);
    tokio::pin!(init_deadline);

    let close = loop {
        tokio::select! {
            () = &mut init_deadline, if guarded && !guard.init_received => {
                break Some((4408, "Connection initialisation timeout".to_owned()));
            }
            message = incoming.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
                    Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                        Ok(text) => text,
                        Err(_) => break Some((4400, "Messages must be UTF-8 JSON".to_owned())),
                    },
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                    Some(Ok(_)) => continue,
                };
                if guarded && let Err(refusal) = guard.check(&text) {
                    break Some(refusal);
                }
                if forward.send(text.into_bytes()).is_err() {
                    break None;
                }
            }
            reply = outgoing.next() => match reply {
                Some(WsMessage::Text(text)) => {
                    guard.observe(&text);
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break None;
                    }
                }
                Some(WsMessage::Close(code, reason)) => break Some((code, reason)),
                None => break None,
            },
        }
    };
    if let Some((code, reason)) = close {
        let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
    }
    let _ = sink.close().await;
}

/// The protocol state the guard needs: whether the connection was initialised and acknowledged,
/// and which subscription ids are in use.
#[derive(Default)]
struct Guard {
    init_received: bool,
    acknowledged: bool,
    active: HashSet<String>,
}

impl Guard {
    /// Accepts a client message, or says with which code and reason to close.
    fn check(&mut self, text: &str) -> Result<(), (u16, String)> {
        let invalid = |why: &str| (4400, why.to_owned());
        let message: Value = serde_json::from_str(text).map_err(|_| invalid("Invalid message: not JSON"))?;
        let kind = message.get("type").and_then(Value::as_str).ok_or_else(|| invalid("Invalid message: no type"))?;
        let id = || match message.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => Ok(id.to_owned()),
            _ => Err(invalid("Invalid message: no id")),
        };
        match kind {
            "connection_init" => {
                if self.init_received {
                    return Err((4429, "Too many initialisation requests".to_owned()));
                }
                self.init_received = true;
            }
            "ping" | "pong" => {}
            "subscribe" => {
                let id = id()?;
                let query = message.get("payload").and_then(|p| p.get("query")).and_then(Value::as_str);
                if query.is_none() {
                    return Err(invalid("Invalid message: subscribe needs payload.query"));
                }
                if !self.acknowledged {
                    return Err((4401, "Unauthorized".to_owned()));
                }
                if !self.active.insert(id.clone()) {
                    return Err((4409, format!("Subscriber for {id} already exists")));
                }
            }
            "complete" => {
                self.active.remove(&id()?);
            }
            other => return Err(invalid(&format!("Invalid message: unknown type {other}"))),
        }
        Ok(())
    }

    /// Follows what the server sends: the acknowledgement, and subscriptions that ended.
    fn observe(&mut self, text: &str) {
        let Ok(message) = serde_json::from_str::<Value>(text) else { return };
        match message.get("type").and_then(Value::as_str) {
            Some("connection_ack") => self.acknowledged = true,
            Some("complete" | "error") => {
                if let Some(id) = message.get("id").and_then(Value::as_str) {
                    self.active.remove(id);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(guard: &mut Guard, message: &str) -> Option<u16> {
        guard.check(message).err().map(|(code, _)| code)
    }

    #[test]
    fn the_guard_follows_the_protocol() {
        let mut guard = Guard::default();
        let subscribe = r#"{"type":"subscribe","id":"1","payload":{"query":"subscription { graphChanged { type } }"}}"#;
        assert_eq!(code(&mut guard, "not json"), Some(4400));
        assert_eq!(code(&mut guard, r#"{"type":"hello"}"#), Some(4400));
        assert_eq!(code(&mut guard, subscribe), Some(4401));
        assert_eq!(code(&mut guard, r#"{"type":"connection_init"}"#), None);
        assert_eq!(code(&mut guard, r#"{"type":"connection_init"}"#), Some(4429));
        guard.observe(r#"{"type":"connection_ack"}"#);
        assert_eq!(code(&mut guard, subscribe), None);
        assert_eq!(code(&mut guard, subscribe), Some(4409));
        guard.observe(r#"{"type":"complete","id":"1"}"#);
        assert_eq!(code(&mut guard, subscribe), None);
    }
}
