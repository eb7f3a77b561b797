//! HTTP/1.1 for servers: requests decoded whole (head and body) into
//! `http`'s types, responses encoded with the body beside the head, files
//! sent without copying.
//!
//! Everything the peer sends is parsed by `httparse` after being found
//! and bounded here: the decoder looks at each byte once, fails as soon as
//! a limit is passed, and refuses the framing ambiguities that request
//! smuggling lives on (RFC 9112 §6.3). See [`HttpServerCodec`].

mod chunked;
mod codec;
pub(crate) mod date;
mod decoder;
mod encoder;
mod error;
mod fields;
mod framing;
mod head;
mod limits;
mod request;
mod response;
mod scan;

pub use codec::HttpServerCodec;
pub use error::HttpError;
pub use fields::EncodedFields;
pub use limits::HttpLimits;
pub use request::HttpRequest;
pub use response::{Body, HttpResponse};
