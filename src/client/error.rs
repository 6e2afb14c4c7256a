//! The client's error type, and the reasons a session can end.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::protocol::{DecodeError, EncodeError, ErrorCode, MessageType};

/// Everything a client call can fail with. Each variant is one way things go wrong, so that a
/// caller can tell "fix my request" (`Server`, `Encode`) from "reconnect" (`Disconnected`).
#[derive(Debug)]
pub enum ClientError {
    /// Reading or writing the socket failed outside a session (during connect and login).
    Io(io::Error),
    /// The TCP connection could not be opened.
    Connect {
        /// The last address tried, if the name resolved to any.
        addr: Option<SocketAddr>,
        /// Why the connection failed.
        source: io::Error,
    },
    /// The server answered `LOGIN` with `LOGIN_REJECTED`.
    LoginRejected {
        /// The server's reason, e.g. `BAD_CREDENTIALS` (200).
        reason: ErrorCode,
        /// The server's sentence for a human.
        message: String,
    },
    /// The server answered the request with `ERROR`; the session is still usable.
    Server {
        /// The server's error code, e.g. `UNKNOWN_VERTICAL` (300).
        code: ErrorCode,
        /// The server's sentence for a human.
        message: String,
    },
    /// The server broke the protocol: a malformed frame, or an answer of the wrong type.
    Protocol(ProtocolError),
    /// The request could not be encoded: the server would reject it as malformed.
    Encode(EncodeError),
    /// The message passed to [`Client::request`](super::Client::request) is not a request this
    /// client may send (a response, a notice, `LOGIN` or `GOODBYE`).
    NotARequest(MessageType),
    /// The session is over (or ending): the call was not answered and will not be.
    Disconnected {
        /// Why the session ended.
        reason: DisconnectReason,
    },
    /// A bounded wait ran out: login, or a caller's own [`timeout`](super::timeout).
    Timeout,
}

impl ClientError {
    /// The protocol code this error carries, if any: the server's `ERROR` or login rejection
    /// code, or the code that ended the session.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::LoginRejected { reason, .. } => Some(*reason),
            Self::Server { code, .. } => Some(*code),
            Self::Protocol(ProtocolError::Decode(error)) => Some(error.code),
            Self::Encode(error) => Some(error.code),
            Self::Disconnected { reason } => reason.code(),
            _ => None,
        }
    }

    pub(crate) fn disconnected(reason: DisconnectReason) -> Self {
        Self::Disconnected { reason }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(error) => write!(f, "the connection to the server failed: {error}"),
            Self::Connect {
                addr: Some(addr),
                source,
            } => {
                write!(f, "could not connect to the server at {addr}: {source}")
            }
            Self::Connect { addr: None, source } => {
                write!(f, "could not connect to the server: {source}")
            }
            Self::LoginRejected { reason, message } => {
                write!(f, "the server rejected the login with {reason}: {message}")
            }
            Self::Server { code, message } => {
                write!(f, "the server answered with error {code}: {message}")
            }
            Self::Protocol(error) => write!(f, "the server broke the protocol: {error}"),
            Self::Encode(error) => write!(f, "the request is invalid and was not sent ({error})"),
            Self::NotARequest(message_type) => {
                write!(
                    f,
                    "{message_type:?} is not a request a client may send with request()"
                )
            }
            Self::Disconnected { reason } => write!(f, "the session is over: {reason}"),
            Self::Timeout => write!(f, "the operation timed out"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(error) | Self::Connect { source: error, .. } => Some(error),
            Self::Protocol(ProtocolError::Decode(error)) => Some(error),
            Self::Encode(error) => Some(error),
            _ => None,
        }
    }
}

impl From<EncodeError> for ClientError {
    fn from(error: EncodeError) -> Self {
        Self::Encode(error)
    }
}

impl From<ProtocolError> for ClientError {
    fn from(error: ProtocolError) -> Self {
        Self::Protocol(error)
    }
}

/// How the server broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// A frame from the server does not decode.
    Decode(DecodeError),
    /// The server answered a request with a message of another type.
    UnexpectedResponse {
        /// What the request is answered by, e.g. `PING_RESULT`.
        expected: &'static str,
        /// What arrived.
        got: MessageType,
    },
    /// Any other breach, described in a sentence.
    Violation(String),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(error) => write!(f, "a frame does not decode: {error}"),
            Self::UnexpectedResponse { expected, got } => {
                write!(f, "expected {expected} in answer, got {}", got.name())
            }
            Self::Violation(description) => f.write_str(description),
        }
    }
}

/// Why a session ended. Cloned into the error of every call that was pending when it did.
#[derive(Debug, Clone)]
pub enum DisconnectReason {
    /// The session ended with a protocol code: the server's `GOODBYE` or fatal `ERROR`, or
    /// `HEARTBEAT_TIMEOUT` (208) when this client declared the server dead.
    Code {
        /// The code, e.g. `SERVER_SHUTTING_DOWN` (207) or `HEARTBEAT_TIMEOUT` (208).
        code: ErrorCode,
        /// The server's sentence, or the client's own description.
        message: String,
    },
    /// The server closed the connection between frames, without `GOODBYE`.
    ConnectionClosed,
    /// The server closed the connection in the middle of a frame.
    TruncatedFrame {
        /// Bytes of the unfinished frame that had arrived.
        bytes_received: usize,
    },
    /// The server sent bytes that cannot be framed (a fatal decode error); the client answered
    /// `ERROR` and closed.
    Framing(DecodeError),
    /// Reading or writing the socket failed.
    Io(Arc<io::Error>),
    /// This client ended the session with [`Client::close`](super::Client::close), or every
    /// handle to it was dropped.
    ClosedByClient,
    /// This client sent `GOODBYE` and the server did not answer `GOODBYE_ACK` within
    /// `GOODBYE_TIMEOUT_MS`; the client closed anyway.
    GoodbyeUnanswered,
    /// The client's I/O task stopped without recording a reason (it panicked, or its runtime
    /// shut down).
    TaskEnded,
}

impl DisconnectReason {
    /// The protocol code of this reason, if it has one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Code { code, .. } => Some(*code),
            Self::Framing(error) => Some(error.code),
            _ => None,
        }
    }

    pub(crate) fn heartbeat_timeout(silent_ms: u64) -> Self {
        Self::Code {
            code: ErrorCode::HEARTBEAT_TIMEOUT,
            message: format!("the server sent nothing for {silent_ms} ms"),
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code { code, message } if message.is_empty() => write!(f, "{code}"),
            Self::Code { code, message } => write!(f, "{code}: {message}"),
            Self::ConnectionClosed => write!(f, "the server closed the connection"),
            Self::TruncatedFrame { bytes_received } => write!(
                f,
                "the server closed the connection in the middle of a frame \
                 ({bytes_received} bytes of it had arrived)"
            ),
            Self::Framing(error) => write!(f, "the server sent an unframeable stream: {error}"),
            Self::Io(error) => write!(f, "the connection failed: {error}"),
            Self::ClosedByClient => write!(f, "the client closed the session"),
            Self::GoodbyeUnanswered => {
                write!(
                    f,
                    "the client closed the session; the server did not acknowledge GOODBYE"
                )
            }
            Self::TaskEnded => write!(f, "the client's connection task stopped unexpectedly"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_display_as_sentences() {
        let error = ClientError::Server {
            code: ErrorCode::UNKNOWN_VERTICAL,
            message: "no vertical `solar`".to_owned(),
        };
        assert_eq!(
            error.to_string(),
            "the server answered with error UNKNOWN_VERTICAL (300): no vertical `solar`"
        );
        let error = ClientError::disconnected(DisconnectReason::heartbeat_timeout(3_000));
        assert_eq!(
            error.to_string(),
            "the session is over: HEARTBEAT_TIMEOUT (208): the server sent nothing for 3000 ms"
        );
        assert_eq!(error.code(), Some(ErrorCode::HEARTBEAT_TIMEOUT));
        let error = ClientError::Protocol(ProtocolError::UnexpectedResponse {
            expected: "PING_RESULT",
            got: MessageType::AdminOk,
        });
        assert_eq!(
            error.to_string(),
            "the server broke the protocol: expected PING_RESULT in answer, got ADMIN_OK"
        );
        let reason = DisconnectReason::TruncatedFrame { bytes_received: 9 };
        assert_eq!(
            reason.to_string(),
            "the server closed the connection in the middle of a frame (9 bytes of it had arrived)"
        );
        assert_eq!(reason.code(), None);
    }
}
