//! `HttpServerCodec`: the decoder and the encoder behind the transport's
//! `Codec` trait, with the few settings a server chooses.

use http::HeaderValue;
use wharf_buf::ByteBuf;
use wharf_transport::{Codec, CodecError, Encoded};

use super::decoder::Decoder;
use super::encoder::Encoder;
use super::error::HttpError;
use super::limits::HttpLimits;
use super::request::HttpRequest;
use super::response::HttpResponse;

/// The server side of HTTP/1.1: requests in, responses out (Netty's
/// `HttpServerCodec` with an `HttpObjectAggregator` on top).
///
/// # Decoding
///
/// Each complete request is delivered as `Ok(HttpRequest)`, in order, with
/// its whole body. A request the codec refuses is delivered as
/// `Err(HttpError)` carrying the status to answer with (see
/// [`HttpError`] for which); the codec then decodes nothing more and drops
/// whatever else arrives, so the handler answers with
/// [`HttpResponse::from_error`] and closes. Decoding never fails the
/// channel itself and never panics, and the bytes held for one request are
/// bounded by [`HttpLimits`] plus one read.
///
/// Pipelined requests in one read are all delivered; a request split over
/// any number of reads decodes exactly as if it came whole. Bodies are
/// framed by `Content-Length` or `chunked` on any method, so the next
/// request always starts at the right byte.
///
/// `Expect: 100-continue` is not answered (a codec cannot write while it
/// decodes); clients send the body after a short wait anyway. A request
/// whose `Content-Length` is over the limit is refused with 413 at once,
/// before its body arrives.
///
/// # End of input
///
/// A request left unfinished when the peer closes its side is dropped
/// quietly: there is no complete request to answer.
///
/// # Encoding
///
/// The status line and header fields go into one pooled buffer (with a
/// body of up to 512 bytes); a larger body follows as its own buffer, and
/// a [`Body::File`](crate::Body::File) as an
/// [`OutboundMessage::File`](wharf_transport::OutboundMessage::File),
/// never read into memory. `Content-Length` is added from the body when
/// the handler did not set it; `Date` (formatted once a second) and
/// `Server: wharf` are added unless the handler set them or they are
/// turned off. See [`HttpResponse`] for HEAD, 1xx, 204 and 304.
///
/// Closing after `Connection: close` is the handler's job: the codec does
/// not see the channel.
///
/// Threading: a plain `Send` value; one per connection.
///
/// ```
/// use http::StatusCode;
/// use wharf_codec::{HttpError, HttpRequest, HttpResponse, HttpServerCodec};
/// use wharf_transport::{Context, Handler, Pipeline};
///
/// /// Says hello to every request.
/// struct Hello;
///
/// impl Handler for Hello {
///     type In = Result<HttpRequest, HttpError>;
///     type Out = HttpResponse;
///
///     fn on_read(&mut self, ctx: &mut Context<'_, HttpResponse>, request: Self::In) {
///         match request {
///             Ok(request) => {
///                 let response = HttpResponse::text(StatusCode::OK, "hello\n");
///                 let response = if request.is_head() {
///                     response.head_only(6)
///                 } else {
///                     response
///                 };
///                 ctx.write(response.keep_alive_for(&request));
///                 if !request.keep_alive {
///                     ctx.flush();
///                     ctx.close();
///                 }
///             }
///             Err(error) => {
///                 ctx.write(HttpResponse::from_error(&error));
///                 ctx.flush();
///                 ctx.close();
///             }
///         }
///     }
///
///     fn on_read_complete(&mut self, ctx: &mut Context<'_, HttpResponse>) {
///         ctx.flush();
///     }
/// }
///
/// let make = || Pipeline::new(HttpServerCodec::new(), Hello);
/// let _pipeline = make();
/// ```
#[derive(Debug)]
pub struct HttpServerCodec {
    decoder: Decoder,
    encoder: Encoder,
}

impl HttpServerCodec {
    /// A codec with the default [`HttpLimits`].
    pub fn new() -> HttpServerCodec {
        HttpServerCodec::with_limits(HttpLimits::default())
    }

    /// A codec with `limits`.
    pub fn with_limits(limits: HttpLimits) -> HttpServerCodec {
        HttpServerCodec {
            decoder: Decoder::new(limits),
            encoder: Encoder::default(),
        }
    }

    /// Whether to add a `Date` field to responses that lack one (on by
    /// default; RFC 9110 §6.6.1 asks an origin server with a clock to).
    pub fn date_header(mut self, on: bool) -> HttpServerCodec {
        self.encoder.date = on;
        self
    }

    /// The `Server` field added to responses that lack one: `wharf` by
    /// default, none with `None`.
    pub fn server_header(mut self, value: Option<HeaderValue>) -> HttpServerCodec {
        self.encoder.server = value;
        self
    }

    /// Hands the bodies of requests whose method `which` picks to the
    /// handler instead of reading them: a `Content-Length` request (of at
    /// least one byte) comes at its head with
    /// [`unread_body`](HttpRequest::unread_body) set and an empty `body`,
    /// and the codec decodes nothing more until the handler has taken the
    /// body with [`Context::receive_file`](wharf_transport::Context::receive_file)
    /// (an upload stored without a copy) or
    /// [`Context::skip_input`](wharf_transport::Context::skip_input); the
    /// connection reads nothing meanwhile. [`HttpLimits::max_body`] does
    /// not apply to such bodies: the handler decides. A chunked body on
    /// such a request is refused at its head with 411 Length Required
    /// (before the client sends it, when it waits for `100 Continue`).
    ///
    /// ```
    /// use http::Method;
    /// use wharf_codec::HttpServerCodec;
    ///
    /// let _codec = HttpServerCodec::new().hand_over_bodies(|method| method == Method::PUT);
    /// ```
    pub fn hand_over_bodies(mut self, which: fn(&http::Method) -> bool) -> HttpServerCodec {
        self.decoder.hand_over = Some(which);
        self
    }

    /// The limits requests are held to.
    pub fn limits(&self) -> &HttpLimits {
        self.decoder.limits()
    }
}

impl Default for HttpServerCodec {
    fn default() -> HttpServerCodec {
        HttpServerCodec::new()
    }
}

impl Codec for HttpServerCodec {
    type In = Result<HttpRequest, HttpError>;
    type Out = HttpResponse;

    /// Never fails: refused requests are messages (see the type's docs).
    fn decode(&mut self, input: &mut ByteBuf, out: &mut Vec<Self::In>) -> Result<(), CodecError> {
        self.decoder.decode(input, out);
        Ok(())
    }

    /// Decodes what is complete and drops an unfinished request.
    fn decode_eof(
        &mut self,
        input: &mut ByteBuf,
        out: &mut Vec<Self::In>,
    ) -> Result<(), CodecError> {
        self.decoder.decode(input, out);
        self.decoder.finish(input);
        Ok(())
    }

    fn encode(&mut self, response: HttpResponse, out: &mut Encoded) -> Result<(), CodecError> {
        self.encoder.encode(response, out)
    }

    fn input_claimed(&self) -> bool {
        self.decoder.input_claimed()
    }

    fn input_taken(&mut self, n: u64) {
        self.decoder.input_taken(n)
    }

    /// 256 bytes for the head plus the body that will be sent.
    fn message_size(response: &HttpResponse) -> usize {
        response.estimated_size()
    }
}
