//! The request decoder: a state machine from head to body to the next
//! pipelined request, turning each complete request (or the first error)
//! into a message.

use http::{HeaderMap, Version};
use wharf_buf::ByteBuf;

use super::chunked::ChunkedBody;
use super::error::HttpError;
use super::framing::{Framing, check_host, framing, keep_alive};
use super::head::{Head, HeadReader};
use super::limits::HttpLimits;
use super::request::HttpRequest;

/// What the decoder is waiting for.
#[derive(Debug)]
enum State {
    /// The head of the next request.
    Head(HeadReader),
    /// `length` bytes of body, after `head`. They stay in the input until
    /// all have arrived, then leave it without a copy.
    Fixed {
        head: Head,
        keep_alive: bool,
        length: usize,
    },
    /// A chunked body, after `head`.
    Chunked {
        head: Head,
        keep_alive: bool,
        body: ChunkedBody,
    },
    /// A request was delivered at its head, its body of `remaining` bytes
    /// left in the input for the handler to take around the codec.
    HandedOver { remaining: u64 },
    /// An error was delivered: everything else is discarded.
    Failed,
}

/// Which requests' bodies are handed over (see
/// [`HttpServerCodec::hand_over_bodies`](crate::HttpServerCodec::hand_over_bodies)).
pub(crate) type HandOver = fn(&http::Method) -> bool;

/// Decodes requests, in order, from the front of the input.
#[derive(Debug)]
pub(crate) struct Decoder {
    limits: HttpLimits,
    state: State,
    pub(crate) hand_over: Option<HandOver>,
}

impl Decoder {
    pub(crate) fn new(limits: HttpLimits) -> Decoder {
        Decoder {
            limits,
            state: State::Head(HeadReader::default()),
            hand_over: None,
        }
    }

    /// Whether a handed-over body is still in front of the input.
    pub(crate) fn input_claimed(&self) -> bool {
        matches!(self.state, State::HandedOver { .. })
    }

    /// `n` bytes of a handed-over body were taken around the codec.
    pub(crate) fn input_taken(&mut self, n: u64) {
        if let State::HandedOver { remaining } = &mut self.state {
            *remaining = remaining.saturating_sub(n);
            if *remaining == 0 {
                self.state = State::Head(HeadReader::default());
            }
        }
    }

    pub(crate) fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    /// Decodes every complete request in `input`; the first error is
    /// delivered as the last message, and from then on all input is
    /// dropped.
    pub(crate) fn decode(
        &mut self,
        input: &mut ByteBuf,
        out: &mut Vec<Result<HttpRequest, HttpError>>,
    ) {
        loop {
            match self.step(input, out) {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => {
                    self.state = State::Failed;
                    input.clear();
                    out.push(Err(error));
                    return;
                }
            }
        }
    }

    /// The peer has closed its side: a request it did not finish is
    /// forgotten (it cannot read an answer it is not waiting for, and a
    /// half-closed peer that is waiting sent something incomplete anyway).
    pub(crate) fn finish(&mut self, input: &mut ByteBuf) {
        input.clear();
        if !matches!(self.state, State::Failed) {
            self.state = State::Head(HeadReader::default());
        }
    }

    /// Moves on as far as one state goes: `true` if a request was
    /// delivered or the state changed (step again), `false` if more input
    /// is needed.
    fn step(
        &mut self,
        input: &mut ByteBuf,
        out: &mut Vec<Result<HttpRequest, HttpError>>,
    ) -> Result<bool, HttpError> {
        // Taken out by value; an error leaves `Failed` behind.
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Failed => {
                input.clear();
                Ok(false)
            }
            state @ State::HandedOver { .. } => {
                // The handler takes these bytes; nothing is decoded past them.
                self.state = state;
                Ok(false)
            }
            State::Head(mut reader) => match reader.read(input, &self.limits)? {
                Some(head) => {
                    self.state = self.body_state(head, out)?;
                    Ok(true)
                }
                None => {
                    self.state = State::Head(reader);
                    Ok(false)
                }
            },
            State::Fixed {
                head,
                keep_alive,
                length,
            } => {
                if input.len() < length {
                    self.state = State::Fixed {
                        head,
                        keep_alive,
                        length,
                    };
                    return Ok(false);
                }
                let body = input.split_to(length);
                self.state = State::Head(HeadReader::default());
                out.push(Ok(request(head, keep_alive, body, HeaderMap::new())));
                Ok(true)
            }
            State::Chunked {
                head,
                keep_alive,
                mut body,
            } => match body.read(input, &self.limits)? {
                Some((body, trailers)) => {
                    self.state = State::Head(HeadReader::default());
                    out.push(Ok(request(head, keep_alive, body, trailers)));
                    Ok(true)
                }
                None => {
                    self.state = State::Chunked {
                        head,
                        keep_alive,
                        body,
                    };
                    Ok(false)
                }
            },
        }
    }

    /// What follows `head`: checks what it says about the body and the
    /// connection.
    /// A request whose body is handed over is delivered into `out` at once.
    fn body_state(
        &self,
        head: Head,
        out: &mut Vec<Result<HttpRequest, HttpError>>,
    ) -> Result<State, HttpError> {
        let version = head.line.version;
        check_host(&head.headers, version)?;
        let framing = framing(&head.headers)?;
        let mut keep_alive = keep_alive(&head.headers, version);
        Ok(match framing {
            Framing::Length(length)
                if length > 0 && self.hand_over.is_some_and(|f| f(&head.line.method)) =>
            {
                let mut request = request(head, keep_alive, ByteBuf::new(), HeaderMap::new());
                request.unread_body = Some(length);
                out.push(Ok(request));
                State::HandedOver { remaining: length }
            }
            Framing::Length(length) => {
                let length = usize::try_from(length)
                    .ok()
                    .filter(|&n| n <= self.limits.max_body)
                    .ok_or_else(HttpError::body_too_large)?;
                State::Fixed {
                    head,
                    keep_alive,
                    length,
                }
            }
            Framing::Chunked if self.hand_over.is_some_and(|f| f(&head.line.method)) => {
                // A body handed over is taken by its length: refuse at the
                // head, before the client sends it (`Expect: 100-continue`).
                return Err(HttpError::length_required());
            }
            Framing::Chunked => {
                // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding
                // has faulty framing; process it, then close.
                if version == Version::HTTP_10 {
                    keep_alive = false;
                }
                State::Chunked {
                    head,
                    keep_alive,
                    body: ChunkedBody::new(),
                }
            }
        })
    }
}

/// The request made of `head` and its body.
fn request(head: Head, keep_alive: bool, body: ByteBuf, trailers: HeaderMap) -> HttpRequest {
    HttpRequest {
        method: head.line.method,
        uri: head.line.uri,
        version: head.line.version,
        headers: head.headers,
        body,
        trailers,
        keep_alive,
        unread_body: None,
    }
}
